// CPU max/avg pooling over NCHW planes, one plane per OpenMP work item.
// Window and divisor rules are PyTorch's (aten/src/ATen/native/cpu/MaxPoolKernel.cpp,
// AvgPoolKernel.cpp): max pooling keeps the first maximum of a window (NaN wins, first
// NaN kept) and records its flat index into H*W; average pooling divides by the window
// clipped to the padded input (count_include_pad) or to the input itself.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"

namespace tessera::cpu {
namespace {

struct PoolGeom {
  int64_t planes, H, W, OH, OW;
};

PoolGeom make_geom(const Shape& in, const Shape& out) {
  return PoolGeom{in[0] * in[1], in[2], in[3], out[2], out[3]};
}

Tensor contiguous_or_self(const Tensor& t) {
  return (!t.defined() || t.is_contiguous()) ? t : t.contiguous();
}

/// Planes per parallel chunk so that a chunk holds about kParallelGrain elements.
int64_t plane_grain(const PoolGeom& g) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, g.H * g.W));
}

/// Max of a kh x kw window at base (rows row_step apart, columns col_step apart) and the
/// offset of its first maximum (first NaN wins), without branches on the data (random data
/// mispredicts a `v > best` branch half the time).
template <typename T>
inline T window_max(const T* base, int64_t kh, int64_t kw, int64_t row_step, int64_t col_step, int64_t& best_off) {
  T best = base[0];
  int64_t bo = 0;
  for (int64_t ki = 0; ki < kh; ++ki) {
    for (int64_t kj = 0; kj < kw; ++kj) {
      const int64_t off = ki * row_step + kj * col_step;
      const T v = base[off];
      const bool take = (v > best) | ((v != v) & (best == best));
      best = take ? v : best;
      bo = take ? off : bo;
    }
  }
  best_off = bo;
  return best;
}

/// One output row of a 2x2, stride 2 max pool over input rows r0 and r1 (r0 starts at flat
/// index start in its plane, rows are W apart): out[j] = max of r0[2j], r0[2j+1], r1[2j],
/// r1[2j+1] and idx[j] its flat index, the first maximum in that order, or the first NaN.
template <typename T>
void max_pool_2x2_row(const T* __restrict r0, const T* __restrict r1, int64_t start, int64_t W, int64_t n,
                      T* __restrict out, int64_t* __restrict idx) {
  for (int64_t j = 0; j < n; ++j) {
    const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
    // NaN-propagating max: any NaN makes m NaN.
    const T ab = (b > a || b != b) ? b : a;
    const T cd = (d > c || d != d) ? d : c;
    const T m = (cd > ab || cd != cd) ? cd : ab;
    // First element equal to m, or the first NaN when m is NaN.
    const int64_t k = (a == m || a != a) ? 0 : (b == m || b != b) ? 1 : (c == m || c != c) ? W : W + 1;
    out[j] = m;
    idx[j] = start + 2 * j + k;
  }
}

template <typename T>
void max_pool_forward_impl(const Tensor& x, const Pool2dParams& p, const Tensor& out, const Tensor& idx) {
  const PoolGeom g = make_geom(x.shape(), out.shape());
  const T* xd = x.data_ptr<T>();
  T* od = out.data_ptr<T>();
  int64_t* id = idx.data_ptr<int64_t>();
  const int64_t kh = p.kernel[0], kw = p.kernel[1], sh = p.stride[0], sw = p.stride[1];
  const int64_t ph = p.padding[0], pw = p.padding[1], dh = p.dilation[0], dw = p.dilation[1];
  parallel_for(g.planes, plane_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = xd + pl * g.H * g.W;
      T* op = od + pl * g.OH * g.OW;
      int64_t* ip = id + pl * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = oh * sh - ph;
        const bool rows_inside = h0 >= 0 && h0 + (kh - 1) * dh < g.H;
        int64_t ow = 0;
        if (rows_inside && kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1 && pw == 0) {
          // The usual 2x2 / stride 2 window: a loop the compiler vectorises (selects, no
          // branches on the data), up to the last window that lies inside the row.
          ow = std::min(g.OW, g.W / 2);
          max_pool_2x2_row(xp + h0 * g.W, xp + (h0 + 1) * g.W, h0 * g.W, g.W, ow, op + oh * g.OW, ip + oh * g.OW);
        }
        for (; ow < g.OW; ++ow) {
          const int64_t w0 = ow * sw - pw;
          if (rows_inside && w0 >= 0 && w0 + (kw - 1) * dw < g.W) {
            // Window inside the input (the common case): no bounds checks, and a branch-free
            // running max (random data mispredicts a `v > best` branch half the time). Takes v
            // when it is larger, or when it is the first NaN; keeps the first maximum.
            const int64_t start = h0 * g.W + w0;
            int64_t best_off = 0;
            op[oh * g.OW + ow] = window_max(xp + start, kh, kw, dh * g.W, dw, best_off);
            ip[oh * g.OW + ow] = start + best_off;
            continue;
          }
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_i = -1;
          bool found_nan = false;
          for (int64_t ki = 0; ki < kh && !found_nan; ++ki) {
            const int64_t ih = h0 + ki * dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t kj = 0; kj < kw; ++kj) {
              const int64_t iw = w0 + kj * dw;
              if (iw < 0 || iw >= g.W) continue;
              const T v = xp[ih * g.W + iw];
              if (best_i < 0 || v > best || std::isnan(v)) {
                best = v;
                best_i = ih * g.W + iw;
                if (std::isnan(v)) {
                  found_nan = true;
                  break;
                }
              }
            }
          }
          op[oh * g.OW + ow] = best;
          ip[oh * g.OW + ow] = best_i;
        }
      }
    }
  });
}

template <typename T>
void max_pool_backward_impl(const Tensor& idx, const Tensor& grad_out, const Tensor& grad_x) {
  const PoolGeom g = make_geom(grad_x.shape(), grad_out.shape());
  const int64_t* id = idx.data_ptr<int64_t>();
  const T* god = grad_out.data_ptr<T>();
  T* gxd = grad_x.data_ptr<T>();
  const int64_t plane_in = g.H * g.W, plane_out = g.OH * g.OW;
  parallel_for(g.planes, plane_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* gx = gxd + pl * plane_in;
      std::fill(gx, gx + plane_in, T(0));
      const int64_t* ip = id + pl * plane_out;
      const T* go = god + pl * plane_out;
      for (int64_t o = 0; o < plane_out; ++o) {
        const int64_t i = ip[o];
        if (i >= 0 && i < plane_in) gx[i] += go[o];
      }
    }
  });
}

/// Window [h0, h1) x [w0, w1) inside the input and its divisor, as PyTorch's avg_pool2d.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

inline AvgWindow avg_window(int64_t oh, int64_t ow, const PoolGeom& g, const Pool2dParams& p) {
  int64_t h0 = oh * p.stride[0] - p.padding[0], w0 = ow * p.stride[1] - p.padding[1];
  int64_t h1 = std::min(h0 + p.kernel[0], g.H + p.padding[0]);
  int64_t w1 = std::min(w0 + p.kernel[1], g.W + p.padding[1]);
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  const int64_t divisor = p.count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
  return AvgWindow{h0, h1, w0, w1, divisor};
}

template <typename T>
void avg_pool_forward_impl(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  const PoolGeom g = make_geom(x.shape(), out.shape());
  const T* xd = x.data_ptr<T>();
  T* od = out.data_ptr<T>();
  parallel_for(g.planes, plane_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = xd + pl * g.H * g.W;
      T* op = od + pl * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const AvgWindow win = avg_window(oh, ow, g, p);
          if (win.h0 >= win.h1 || win.w0 >= win.w1 || win.divisor <= 0) {
            op[oh * g.OW + ow] = T(0);
            continue;
          }
          T s = 0;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) s += xp[ih * g.W + iw];
          op[oh * g.OW + ow] = s / T(win.divisor);
        }
      }
    }
  });
}

template <typename T>
void avg_pool_backward_impl(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  const PoolGeom g = make_geom(grad_x.shape(), grad_out.shape());
  const T* god = grad_out.data_ptr<T>();
  T* gxd = grad_x.data_ptr<T>();
  parallel_for(g.planes, plane_grain(g), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* gx = gxd + pl * g.H * g.W;
      std::fill(gx, gx + g.H * g.W, T(0));
      const T* go = god + pl * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const AvgWindow win = avg_window(oh, ow, g, p);
          if (win.h0 >= win.h1 || win.w0 >= win.w1 || win.divisor <= 0) continue;
          const T v = go[oh * g.OW + ow] / T(win.divisor);
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) gx[ih * g.W + iw] += v;
        }
      }
    }
  });
}

}  // namespace

Tensor CpuBackend::max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return max_pool2d_forward(f.in(x), p, f.out(out));
  }
  const Tensor xc = contiguous_or_self(x);
  Tensor indices = empty(out.shape(), TensorOptions(DType::Int64, out.device()));
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_forward_impl<T>(xc, p, out, indices);
  });
  return indices;
}

void CpuBackend::max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& saved,
                                     const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  if (is_reduced_floating_point(grad_x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return max_pool2d_backward(f.in(x), f.in(out), saved, f.in(grad_out), p, f.out(grad_x));
  }
  Tensor indices = saved;
  if (!indices.defined()) {
    // Recompute the argmax when the caller kept no indices.
    Tensor tmp = empty(out.shape(), TensorOptions(out.dtype(), out.device()));
    indices = max_pool2d_forward(x, p, tmp);
  }
  indices = contiguous_or_self(indices);
  TESSERA_CHECK(indices.dtype() == DType::Int64 && indices.shape() == grad_out.shape(), ValueError,
                "max_pool2d_backward: saved indices must be int64 of the output's shape ",
                shape_str(grad_out.shape()), ", got ", dtype_name(indices.dtype()), " ",
                shape_str(indices.shape()));
  const Tensor gc = contiguous_or_self(grad_out);
  dispatch_float(grad_x.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_backward_impl<T>(indices, gc, grad_x);
  });
}

void CpuBackend::avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return avg_pool2d_forward(f.in(x), p, f.out(out));
  }
  const Tensor xc = contiguous_or_self(x);
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_forward_impl<T>(xc, p, out);
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  if (is_reduced_floating_point(grad_x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return avg_pool2d_backward(f.in(grad_out), p, f.out(grad_x));
  }
  const Tensor gc = contiguous_or_self(grad_out);
  dispatch_float(grad_x.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_backward_impl<T>(gc, p, grad_x);
  });
}

}  // namespace tessera::cpu
