// CPU conv2d: im2col / col2im + Eigen GEMM, one image per OpenMP thread (each thread owns
// its column buffer; Eigen's GEMM runs single-threaded inside the parallel region and
// threads itself when the batch is a single image).
//
// For image n and group g (row-major matrices):
//   forward   out[n, g]  [Cout_g, L] = W_g [Cout_g, K] * col(x[n, g]) [K, L]
//   grad_w    dW_g       [Cout_g, K] += dout[n, g] [Cout_g, L] * col^T [L, K]
//   grad_x    dcol       [K, L] = W_g^T [K, Cout_g] * dout[n, g] [Cout_g, L]; col2im(dcol)
// with K = C_in/groups * kH * kW and L = OH * OW. The im2col layout is Caffe's
// (Jia et al., 2014; Chellapilla et al., "High Performance Convolutional Neural Networks
// for Document Processing", 2006).
#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <exception>
#include <vector>

#include "cpu/cpu_backend.hpp"
#include "cpu/dispatch.hpp"

namespace tessera::cpu {
namespace {

template <typename T>
using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MapR = Eigen::Map<MatR<T>, Eigen::Unaligned>;
template <typename T>
using CMapR = Eigen::Map<const MatR<T>, Eigen::Unaligned>;
template <typename T>
using CMapVec = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;

/// Sizes of one conv2d call, read from the (validated) tensors.
struct ConvGeom {
  int64_t N, C, H, W;      // input
  int64_t Cout, kH, kW;    // weight
  int64_t OH, OW;          // output
  int64_t groups, Cg, Coutg;
  int64_t K, L;            // GEMM inner size (Cg*kH*kW) and columns (OH*OW)
  int64_t sh, sw, ph, pw, dh, dw;
  bool direct;             // 1x1 kernel, stride 1, no padding: col(x) is x itself
};

ConvGeom make_geom(const Shape& xs, const Shape& ws, const Shape& os, const Conv2dParams& p) {
  ConvGeom g{};
  g.N = xs[0]; g.C = xs[1]; g.H = xs[2]; g.W = xs[3];
  g.Cout = ws[0]; g.kH = ws[2]; g.kW = ws[3];
  g.OH = os[2]; g.OW = os[3];
  g.groups = p.groups;
  g.Cg = g.C / g.groups;
  g.Coutg = g.Cout / g.groups;
  g.K = g.Cg * g.kH * g.kW;
  g.L = g.OH * g.OW;
  g.sh = p.stride[0]; g.sw = p.stride[1];
  g.ph = p.padding[0]; g.pw = p.padding[1];
  g.dh = p.dilation[0]; g.dw = p.dilation[1];
  g.direct = g.kH == 1 && g.kW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
             g.OH == g.H && g.OW == g.W;
  return g;
}

/// The range [lo, hi) of output columns ow whose input column ow*s + off lies in [0, W).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / s + 1;
  lo = std::min(lo, OW);
  hi = std::min(std::max(hi, lo), OW);
}

/// Zeroes n elements; skips the call for the usual n == 0 of unpadded rows.
template <typename T>
inline void zero_fill(T* p, int64_t n) {
  if (n > 0) std::fill(p, p + n, T(0));
}

template <typename T>
using VecMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;
template <typename T>
using CVecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;

/// col [K, L] from the Cg channels of one image starting at x ([Cg, H, W] contiguous).
template <typename T>
void im2col(const T* x, const ConvGeom& g, T* col) {
  for (int64_t c = 0; c < g.Cg; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        T* row = col + ((c * g.kH + ki) * g.kW + kj) * g.L;
        const int64_t off_w = kj * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off_w, g.sw, g.W, g.OW, lo, hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          T* r = row + oh * g.OW;
          const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.H) {
            zero_fill(r, g.OW);
            continue;
          }
          const T* xr = xc + ih * g.W + off_w;
          zero_fill(r, lo);
          if (g.sw == 1) {
            // Short rows: an inlined vector copy beats a memcpy call.
            VecMap<T>(r + lo, hi - lo) = CVecMap<T>(xr + lo, hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow * g.sw];
          }
          zero_fill(r + hi, g.OW - hi);
        }
      }
    }
  }
}

/// x ([Cg, H, W] contiguous, zeroed by the caller) += col2im(col [K, L]).
template <typename T>
void col2im(const T* col, const ConvGeom& g, T* x) {
  for (int64_t c = 0; c < g.Cg; ++c) {
    T* xc = x + c * g.H * g.W;
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        const T* row = col + ((c * g.kH + ki) * g.kW + kj) * g.L;
        const int64_t off_w = kj * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off_w, g.sw, g.W, g.OW, lo, hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* r = row + oh * g.OW;
          T* xr = xc + ih * g.W + off_w;
          if (g.sw == 1) {
            VecMap<T>(xr + lo, hi - lo) += CVecMap<T>(r + lo, hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += r[ow];
          }
        }
      }
    }
  }
}

/// "Wide" im2col for stride 1 and no padding: row (c, ki, kj) of col [K, OH*W] is the
/// contiguous run of the input plane starting at (ki*dh, kj*dw), so each row is one long
/// copy. Columns oh*W + ow with ow >= OW hold values that belong to no output (dropped
/// after the GEMM); the few positions past the end of the plane are zeroed.
template <typename T>
void im2col_wide(const T* x, const ConvGeom& g, T* col) {
  const int64_t plane = g.H * g.W, Lw = g.OH * g.W;
  for (int64_t c = 0; c < g.Cg; ++c) {
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        T* row = col + ((c * g.kH + ki) * g.kW + kj) * Lw;
        const int64_t off = ki * g.dh * g.W + kj * g.dw;
        const int64_t n = std::min(Lw, plane - off);
        VecMap<T>(row, n) = CVecMap<T>(x + c * plane + off, n);
        zero_fill(row + n, Lw - n);
      }
    }
  }
}

/// Whether the wide column layout applies: stride 1, no padding, a kernel wider than 1.
inline bool use_wide(const ConvGeom& g) {
  return !g.direct && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

/// Zeroes the columns of a wide row [OH*W] that belong to no output (ow >= OW).
template <typename T>
void zero_wide_padding(T* row, const ConvGeom& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh)
    for (int64_t j = g.OW; j < g.W; ++j) row[oh * g.W + j] = T(0);
}

/// x ([Cg, H, W]) += col2im of a wide column buffer [K, OH*W] whose non-output columns
/// are zero: each row adds into one contiguous run of its input plane.
template <typename T>
void col2im_wide(const T* col, const ConvGeom& g, T* x) {
  const int64_t plane = g.H * g.W, Lw = g.OH * g.W;
  for (int64_t c = 0; c < g.Cg; ++c) {
    for (int64_t ki = 0; ki < g.kH; ++ki) {
      for (int64_t kj = 0; kj < g.kW; ++kj) {
        const T* row = col + ((c * g.kH + ki) * g.kW + kj) * Lw;
        const int64_t off = ki * g.dh * g.W + kj * g.dw;
        const int64_t n = std::min(Lw, plane - off);
        VecMap<T>(x + c * plane + off, n) += CVecMap<T>(row, n);
      }
    }
  }
}

/// Per-thread scratch memory that persists across calls, so the column buffers of a
/// training loop are allocated (and page-faulted) once per thread, not once per step.
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  if (int64_t(b.size()) < n) b.resize(std::size_t(n));
  return b.data();
}

/// Below this many multiply-adds a call runs on one thread: waking a team costs more, and
/// on a busy machine a team waits for its slowest (descheduled) thread.
constexpr int64_t kConvParallelMacs = int64_t(1) << 20;

/// Runs body(n, thread_index) for n in [0, N): one image per OpenMP thread when there are
/// at least two images and threads and enough work, else serially (Eigen may then thread each GEMM).
/// setup(nthreads) is called first to size per-thread buffers. An exception thrown by a
/// body (e.g. std::bad_alloc for a scratch buffer) is rethrown after the parallel region.
template <typename Setup, typename Body>
void for_each_image(const ConvGeom& g, Setup&& setup, Body&& body) {
  const int64_t N = g.N;
  const int64_t macs = g.N * g.Cout * g.L * g.K;
  int threads = (omp_in_parallel() || macs < kConvParallelMacs) ? 1 : omp_get_max_threads();
  threads = int(std::max<int64_t>(1, std::min<int64_t>(threads, N)));
  setup(threads);
  if (threads == 1) {
    for (int64_t n = 0; n < N; ++n) body(n, 0);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      try {
        body(n, t);
      } catch (...) {
#pragma omp critical(tessera_conv_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

template <typename T>
void conv2d_forward_impl(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                         const Tensor& out) {
  const ConvGeom g = make_geom(x.shape(), w.shape(), out.shape(), p);
  const T* xd = x.data_ptr<T>();
  const T* wd = w.data_ptr<T>();
  const T* bd = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* od = out.data_ptr<T>();
  if (g.N == 0 || g.Cout == 0 || g.L == 0) return;

  // Stride 1 without padding (the MNIST net's layers): one long copy per column-buffer row
  // and a GEMM over full-width rows, then the valid OW columns of each row are kept.
  const bool wide = use_wide(g);
  if (wide) {
    const int64_t Lw = g.OH * g.W;
    for_each_image(g, [](int) {}, [&](int64_t n, int) {
      T* col = scratch<T>(0, g.K * Lw);
      T* wide_out = scratch<T>(1, g.Coutg * Lw);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        im2col_wide(xd + (n * g.C + grp * g.Cg) * g.H * g.W, g, col);
        MapR<T> ow_m(wide_out, g.Coutg, Lw);
        ow_m.noalias() = CMapR<T>(wd + grp * g.Coutg * g.K, g.Coutg, g.K) * CMapR<T>(col, g.K, Lw);
        for (int64_t o = 0; o < g.Coutg; ++o) {
          T* dst = od + (n * g.Cout + grp * g.Coutg + o) * g.L;
          const T* src = wide_out + o * Lw;
          const T bias_o = bd ? bd[grp * g.Coutg + o] : T(0);
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            VecMap<T>(dst + oh * g.OW, g.OW) = CVecMap<T>(src + oh * g.W, g.OW).array() + bias_o;
          }
        }
      }
    });
    return;
  }

  for_each_image(
      g, [](int) {},
      [&](int64_t n, int) {
        T* col = g.direct ? nullptr : scratch<T>(0, g.K * g.L);
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          const T* xg = xd + (n * g.C + grp * g.Cg) * g.H * g.W;
          const T* colp = xg;
          if (!g.direct) {
            im2col(xg, g, col);
            colp = col;
          }
          CMapR<T> wm(wd + grp * g.Coutg * g.K, g.Coutg, g.K);
          CMapR<T> cm(colp, g.K, g.L);
          MapR<T> om(od + (n * g.Cout + grp * g.Coutg) * g.L, g.Coutg, g.L);
          // Start from the bias (Eigen's "=" would zero the output first anyway).
          if (bd) {
            om.colwise() = CMapVec<T>(bd + grp * g.Coutg, g.Coutg);
          } else {
            om.setZero();
          }
          om.noalias() += wm * cm;
        }
      });
}

template <typename T>
void conv2d_backward_impl(const Tensor& x, const Tensor& w, const Tensor& grad_out, const Conv2dParams& p,
                          const Tensor& grad_x, const Tensor& grad_w, const Tensor& grad_b) {
  const ConvGeom g = make_geom(x.shape(), w.shape(), grad_out.shape(), p);
  const T* xd = x.data_ptr<T>();
  const T* wd = w.data_ptr<T>();
  const T* god = grad_out.data_ptr<T>();
  T* gxd = grad_x.defined() ? grad_x.data_ptr<T>() : nullptr;
  T* gwd = grad_w.defined() ? grad_w.data_ptr<T>() : nullptr;
  T* gbd = grad_b.defined() ? grad_b.data_ptr<T>() : nullptr;

  // grad_b[o] = sum over n and output positions of grad_out[n, o].
  if (gbd) {
    const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, g.N * g.L));
    parallel_for(g.Cout, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        double s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* r = god + (n * g.Cout + o) * g.L;
          s += double(Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(r, g.L).sum());
        }
        gbd[o] = T(s);
      }
    });
  }
  if (!gxd && !gwd) return;
  if (gxd) std::fill(gxd, gxd + g.N * g.C * g.H * g.W, T(0));
  const int64_t wsize = g.Cout * g.K;
  if (gwd) std::fill(gwd, gwd + wsize, T(0));
  if (g.N == 0 || g.L == 0 || g.Cout == 0) return;

  std::vector<std::vector<T>> dws;
  int nthreads = 1;
  const auto setup = [&](int threads) {
    nthreads = threads;
    // Thread 0 accumulates straight into grad_w; the others into their own buffers.
    if (gwd) dws.assign(std::size_t(threads - 1), std::vector<T>(std::size_t(wsize), T(0)));
  };
  if (use_wide(g)) {
    // Wide layout (see im2col_wide): grad_out is widened to [Cout_g, OH*W] with zeros in
    // the non-output columns, so those columns add nothing to grad_w, and the column
    // gradient there is exactly zero, so col2im can add whole runs.
    const int64_t Lw = g.OH * g.W;
    for_each_image(g, setup, [&](int64_t n, int t) {
      T* dw_acc = gwd ? (t == 0 ? gwd : dws[std::size_t(t - 1)].data()) : nullptr;
      T* col = gwd ? scratch<T>(0, g.K * Lw) : nullptr;
      T* dcol = gxd ? scratch<T>(1, g.K * Lw) : nullptr;
      T* gow = scratch<T>(2, g.Coutg * Lw);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const int64_t xoff = (n * g.C + grp * g.Cg) * g.H * g.W;
        for (int64_t o = 0; o < g.Coutg; ++o) {
          const T* src = god + (n * g.Cout + grp * g.Coutg + o) * g.L;
          T* dst = gow + o * Lw;
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            VecMap<T>(dst + oh * g.W, g.OW) = CVecMap<T>(src + oh * g.OW, g.OW);
            zero_fill(dst + oh * g.W + g.OW, g.W - g.OW);
          }
        }
        CMapR<T> gowm(gow, g.Coutg, Lw);
        if (dw_acc) {
          im2col_wide(xd + xoff, g, col);
          // Exact zeros (not just any input values) where grad_out is padded, so an inf in
          // the input cannot leak into grad_w as 0 * inf.
          for (int64_t r = 0; r < g.K; ++r) zero_wide_padding(col + r * Lw, g);
          MapR<T>(dw_acc + grp * g.Coutg * g.K, g.Coutg, g.K).noalias() +=
              gowm * CMapR<T>(col, g.K, Lw).transpose();
        }
        if (gxd) {
          MapR<T>(dcol, g.K, Lw).noalias() =
              CMapR<T>(wd + grp * g.Coutg * g.K, g.Coutg, g.K).transpose() * gowm;
          col2im_wide(dcol, g, gxd + xoff);
        }
      }
    });
  } else {
    for_each_image(
        g,
        setup,
        [&](int64_t n, int t) {
          T* dw_acc = gwd ? (t == 0 ? gwd : dws[std::size_t(t - 1)].data()) : nullptr;
          T* col = (g.direct || !gwd) ? nullptr : scratch<T>(0, g.K * g.L);
          T* dcol = (g.direct || !gxd) ? nullptr : scratch<T>(1, g.K * g.L);
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            const int64_t xoff = (n * g.C + grp * g.Cg) * g.H * g.W;
            CMapR<T> gom(god + (n * g.Cout + grp * g.Coutg) * g.L, g.Coutg, g.L);
            if (dw_acc) {
              const T* colp = xd + xoff;
              if (!g.direct) {
                im2col(xd + xoff, g, col);
                colp = col;
              }
              MapR<T> dwm(dw_acc + grp * g.Coutg * g.K, g.Coutg, g.K);
              dwm.noalias() += gom * CMapR<T>(colp, g.K, g.L).transpose();
            }
            if (gxd) {
              CMapR<T> wm(wd + grp * g.Coutg * g.K, g.Coutg, g.K);
              if (g.direct) {
                MapR<T>(gxd + xoff, g.K, g.L).noalias() = wm.transpose() * gom;
              } else {
                MapR<T>(dcol, g.K, g.L).noalias() = wm.transpose() * gom;
                col2im(dcol, g, gxd + xoff);
              }
            }
          }
        });
  }
  if (gwd) {
    for (int t = 1; t < nthreads; ++t) {
      Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(gwd, wsize) +=
          Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(dws[std::size_t(t - 1)].data(), wsize);
    }
  }
}

Tensor contiguous_or_self(const Tensor& t) {
  return (!t.defined() || t.is_contiguous()) ? t : t.contiguous();
}

}  // namespace

void CpuBackend::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                const Tensor& out) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return conv2d_forward(f.in(x), f.in(w), f.in(bias), p, f.out(out));
  }
  const Tensor xc = contiguous_or_self(x), wc = contiguous_or_self(w), bc = contiguous_or_self(bias);
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2d_forward_impl<T>(xc, wc, bc, p, out);
  });
}

void CpuBackend::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& grad_out,
                                 const Conv2dParams& p, const Tensor& grad_x, const Tensor& grad_w,
                                 const Tensor& grad_b) {
  if (is_reduced_floating_point(x.dtype())) {  // computed in float32, rounded once
    detail::Float32Scope f;
    return conv2d_backward(f.in(x), f.in(w), f.in(grad_out), p, f.out(grad_x), f.out(grad_w), f.out(grad_b));
  }
  const Tensor xc = contiguous_or_self(x), wc = contiguous_or_self(w), gc = contiguous_or_self(grad_out);
  dispatch_float(x.dtype(), "conv2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2d_backward_impl<T>(xc, wc, gc, p, grad_x, grad_w, grad_b);
  });
}

}  // namespace tessera::cpu
