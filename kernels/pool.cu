#include "pool.cuh"

#include "cudnn_descriptors.cuh"
#include "elementwise.cuh"
#include "tessera/deterministic.hpp"

namespace tessera::cuda::detail {

namespace {

struct PoolGeom {
  int64_t NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
  bool include_pad;
};

PoolGeom geom(const Tensor& x_or_gx, const Tensor& out_or_gy, const Pool2dParams& p) {
  return PoolGeom{x_or_gx.size(0) * x_or_gx.size(1), x_or_gx.size(2), x_or_gx.size(3), out_or_gy.size(2),
                  out_or_gy.size(3), p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0],
                  p.padding[1], p.dilation[0], p.dilation[1], p.count_include_pad};
}

/// First index (ih*W + iw) of the maximum of window (oh, ow) in plane x; NaN wins (first NaN).
template <typename T>
__device__ __forceinline__ int64_t window_argmax(const T* __restrict__ x, const PoolGeom& g, int64_t oh, int64_t ow,
                                                 T* max_out) {
  int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  const int64_t he = min(hs + (g.kh - 1) * g.dh + 1, g.H), we = min(ws + (g.kw - 1) * g.dw + 1, g.W);
  while (hs < 0) hs += g.dh;
  while (ws < 0) ws += g.dw;
  T best = T(-INFINITY);
  int64_t bi = hs * g.W + ws;
  for (int64_t ih = hs; ih < he; ih += g.dh)
    for (int64_t iw = ws; iw < we; iw += g.dw) {
      const T v = x[ih * g.W + iw];
      if ((v > best && !(best != best)) || (v != v && best == best)) {
        best = v;
        bi = ih * g.W + iw;
      }
    }
  *max_out = best;
  return bi;
}

template <typename T>
__global__ void max_pool_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, PoolGeom g) {
  const int64_t total = g.NC * g.OH * g.OW;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, nc = i / (g.OW * g.OH);
    T m;
    window_argmax(x + nc * g.H * g.W, g, oh, ow, &m);
    y[i] = m;
  }
}

template <typename T>
__global__ void max_pool_bwd_kernel(const T* __restrict__ x, const T* __restrict__ gy, int64_t gy_s0, int64_t gy_s1,
                                    int64_t gy_s2, int64_t gy_s3, int64_t C, T* __restrict__ gx, PoolGeom g) {
  const int64_t total = g.NC * g.OH * g.OW;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, nc = i / (g.OW * g.OH);
    T m;
    const int64_t idx = window_argmax(x + nc * g.H * g.W, g, oh, ow, &m);
    const T grad = gy[(nc / C) * gy_s0 + (nc % C) * gy_s1 + oh * gy_s2 + ow * gy_s3];
    atomicAdd(gx + nc * g.H * g.W + idx, grad);
  }
}

/// Deterministic backward (gather form): each input element sums the gradients of the
/// windows whose argmax it is, in the order of the output index (oh, then ow), the order in
/// which the CPU backend's scatter adds them: no atomics, the same bits on every run.
template <typename T>
__global__ void max_pool_bwd_gather_kernel(const T* __restrict__ x, const T* __restrict__ gy, int64_t gy_s0,
                                           int64_t gy_s1, int64_t gy_s2, int64_t gy_s3, int64_t C,
                                           T* __restrict__ gx, PoolGeom g) {
  const int64_t total = g.NC * g.H * g.W;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = i % g.W, ih = (i / g.W) % g.H, nc = i / (g.W * g.H);
    const int64_t nh = ih + g.ph - (g.kh - 1) * g.dh, nw = iw + g.pw - (g.kw - 1) * g.dw;
    const int64_t oh_lo = nh <= 0 ? 0 : (nh + g.sh - 1) / g.sh, oh_hi = min(g.OH - 1, (ih + g.ph) / g.sh);
    const int64_t ow_lo = nw <= 0 ? 0 : (nw + g.sw - 1) / g.sw, ow_hi = min(g.OW - 1, (iw + g.pw) / g.sw);
    const T* xp = x + nc * g.H * g.W;
    const T* gp = gy + (nc / C) * gy_s0 + (nc % C) * gy_s1;
    const int64_t self = ih * g.W + iw;
    T s = T(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      if ((ih + g.ph - oh * g.sh) % g.dh != 0) continue;
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        if ((iw + g.pw - ow * g.sw) % g.dw != 0) continue;
        T m;
        if (window_argmax(xp, g, oh, ow, &m) == self) s += gp[oh * gy_s2 + ow * gy_s3];
      }
    }
    gx[i] = s;
  }
}

/// PyTorch's avg_pool2d window: returns [hs, he) x [ws, we) clipped to the input and the divisor.
__device__ __forceinline__ void avg_window(const PoolGeom& g, int64_t oh, int64_t ow, int64_t& hs, int64_t& he,
                                           int64_t& ws, int64_t& we, int64_t& divisor) {
  hs = oh * g.sh - g.ph;
  ws = ow * g.sw - g.pw;
  he = min(hs + g.kh, g.H + g.ph);
  we = min(ws + g.kw, g.W + g.pw);
  const int64_t pool_size = (he - hs) * (we - ws);
  hs = max(hs, int64_t(0));
  ws = max(ws, int64_t(0));
  he = min(he, g.H);
  we = min(we, g.W);
  divisor = g.include_pad ? pool_size : (he - hs) * (we - ws);
}

template <typename T>
__global__ void avg_pool_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, PoolGeom g) {
  const int64_t total = g.NC * g.OH * g.OW;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, nc = i / (g.OW * g.OH);
    int64_t hs, he, ws, we, div;
    avg_window(g, oh, ow, hs, he, ws, we, div);
    const T* xp = x + nc * g.H * g.W;
    T s = T(0);
    for (int64_t ih = hs; ih < he; ++ih)
      for (int64_t iw = ws; iw < we; ++iw) s += xp[ih * g.W + iw];
    y[i] = div > 0 ? s / T(div) : T(0);
  }
}

/// Gather form: each input element sums grad/divisor over the windows that contain it.
template <typename T>
__global__ void avg_pool_bwd_kernel(const T* __restrict__ gy, int64_t gy_s0, int64_t gy_s1, int64_t gy_s2,
                                    int64_t gy_s3, int64_t C, T* __restrict__ gx, PoolGeom g) {
  const int64_t total = g.NC * g.H * g.W;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = i % g.W, ih = (i / g.W) % g.H, nc = i / (g.W * g.H);
    // Windows with oh*sh - ph <= ih < oh*sh - ph + kh.
    const int64_t oh_lo = max(int64_t(0), (ih + g.ph - g.kh + g.sh) / g.sh);
    const int64_t oh_hi = min(g.OH - 1, (ih + g.ph) / g.sh);
    const int64_t ow_lo = max(int64_t(0), (iw + g.pw - g.kw + g.sw) / g.sw);
    const int64_t ow_hi = min(g.OW - 1, (iw + g.pw) / g.sw);
    const T* gp = gy + (nc / C) * gy_s0 + (nc % C) * gy_s1;
    T s = T(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        int64_t hs, he, ws, we, div;
        avg_window(g, oh, ow, hs, he, ws, we, div);
        if (ih >= hs && ih < he && iw >= ws && iw < we && div > 0) s += gp[oh * gy_s2 + ow * gy_s3] / T(div);
      }
    gx[i] = s;
  }
}

bool cudnn_pool_ok(const Pool2dParams& p, bool is_max) {
  if (p.ceil_mode) return false;
  if (is_max && (p.dilation[0] != 1 || p.dilation[1] != 1)) return false;
  return p.padding[0] < p.kernel[0] && p.padding[1] < p.kernel[1];
}

void cudnn_pool_forward(cudnnPoolingMode_t mode, const Tensor& x, const Pool2dParams& p, const Tensor& out,
                        const char* op) {
  DeviceContext& ctx = context_of(x);
  PoolDesc pd;
  TESSERA_CUDNN_CHECK(cudnnSetPooling2dDescriptor(pd.d, mode, CUDNN_PROPAGATE_NAN, to_int(p.kernel[0], op),
                                                  to_int(p.kernel[1], op), to_int(p.padding[0], op),
                                                  to_int(p.padding[1], op), to_int(p.stride[0], op),
                                                  to_int(p.stride[1], op)));
  TensorDesc xd, yd;
  xd.set(x, op);
  yd.set(out, op);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T one = T(1), zero = T(0);
    TESSERA_CUDNN_CHECK(cudnnPoolingForward(ctx.cudnn(), pd.d, &one, xd.d, x.raw_data(), &zero, yd.d, out.raw_data()));
  });
}

void check4(const Tensor& t, const char* op) {
  TESSERA_CHECK(t.dim() == 4, ShapeError, "cuda ", op, ": expected [N, C, H, W], got ", shape_str(t.shape()));
}

}  // namespace

Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  check4(x, "max_pool2d");
  if (out.numel() == 0) return Tensor();
  DeviceGuard guard(x.device().index);
  TESSERA_CHECK(x.is_contiguous() && out.is_contiguous(), ValueError, "cuda max_pool2d: x and out must be contiguous");
  if (cudnn_pool_ok(p, true)) {
    cudnn_pool_forward(CUDNN_POOLING_MAX, x, p, out, "max_pool2d");
    return Tensor();
  }
  const PoolGeom g = geom(x, out, p);
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_fwd_kernel<T><<<grid_for(out.numel(), kThreads), kThreads, 0, context_of(x).stream>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), g);
    TESSERA_KERNEL_CHECK();
  });
  return Tensor();
}

void max_pool2d_backward(const Tensor& x, const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  check4(x, "max_pool2d_backward");
  DeviceGuard guard(x.device().index);
  elementwise_fill(grad_x, 0.0);
  if (grad_out.numel() == 0) return;
  TESSERA_CHECK(x.is_contiguous() && grad_x.is_contiguous(), ValueError,
                "cuda max_pool2d_backward: x and grad_x must be contiguous");
  const PoolGeom g = geom(x, grad_out, p);
  // Overlapping windows can pick the same input element, and the scatter kernel's float
  // atomicAdd then sums in a varying order; deterministic mode takes the gather kernel.
  const bool overlapping = (g.kh - 1) * g.dh + 1 > g.sh || (g.kw - 1) * g.dw + 1 > g.sw;
  if (overlapping && deterministic()) {
    dispatch_float(x.dtype(), "max_pool2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      max_pool_bwd_gather_kernel<T><<<grid_for(grad_x.numel(), kThreads), kThreads, 0, context_of(x).stream>>>(
          static_cast<const T*>(x.raw_data()), static_cast<const T*>(grad_out.raw_data()), grad_out.stride(0),
          grad_out.stride(1), grad_out.stride(2), grad_out.stride(3), x.size(1), static_cast<T*>(grad_x.raw_data()),
          g);
      TESSERA_KERNEL_CHECK();
    });
    return;
  }
  dispatch_float(x.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_bwd_kernel<T><<<grid_for(grad_out.numel(), kThreads), kThreads, 0, context_of(x).stream>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(grad_out.raw_data()), grad_out.stride(0),
        grad_out.stride(1), grad_out.stride(2), grad_out.stride(3), x.size(1), static_cast<T*>(grad_x.raw_data()), g);
    TESSERA_KERNEL_CHECK();
  });
}

void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  check4(x, "avg_pool2d");
  if (out.numel() == 0) return;
  DeviceGuard guard(x.device().index);
  TESSERA_CHECK(x.is_contiguous() && out.is_contiguous(), ValueError, "cuda avg_pool2d: x and out must be contiguous");
  if (cudnn_pool_ok(p, false)) {
    cudnn_pool_forward(p.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                           : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                       x, p, out, "avg_pool2d");
    return;
  }
  const PoolGeom g = geom(x, out, p);
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_fwd_kernel<T><<<grid_for(out.numel(), kThreads), kThreads, 0, context_of(x).stream>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), g);
    TESSERA_KERNEL_CHECK();
  });
}

void avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_x) {
  check4(grad_x, "avg_pool2d_backward");
  if (grad_x.numel() == 0) return;
  DeviceGuard guard(grad_x.device().index);
  TESSERA_CHECK(grad_x.is_contiguous(), ValueError, "cuda avg_pool2d_backward: grad_x must be contiguous");
  if (grad_out.numel() == 0) {
    elementwise_fill(grad_x, 0.0);
    return;
  }
  const PoolGeom g = geom(grad_x, grad_out, p);
  dispatch_float(grad_x.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_bwd_kernel<T><<<grid_for(grad_x.numel(), kThreads), kThreads, 0, context_of(grad_x).stream>>>(
        static_cast<const T*>(grad_out.raw_data()), grad_out.stride(0), grad_out.stride(1), grad_out.stride(2),
        grad_out.stride(3), grad_x.size(1), static_cast<T*>(grad_x.raw_data()), g);
    TESSERA_KERNEL_CHECK();
  });
}

}  // namespace tessera::cuda::detail
