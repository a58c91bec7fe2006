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
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = ow * sw - pw;
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
  const Tensor xc = contiguous_or_self(x);
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_forward_impl<T>(xc, p, out);
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  const Tensor gc = contiguous_or_self(grad_out);
  dispatch_float(grad_x.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_backward_impl<T>(gc, p, grad_x);
  });
}

}  // namespace tessera::cpu
