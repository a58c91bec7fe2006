// Reference cuDNN for Tessera's CUDA emulator (tests/cuda_emu): the legacy cuDNN C API
// functions the CUDA backend (kernels/*.cu) calls, implemented on the host with plain loops
// over NCHW data and linked instead of libcudnn. Compiled against the real <cudnn.h>, so
// every signature, enum value, struct (cudnnConvolutionFwdAlgoPerf_t, ...) and status code is
// the library's own.
//
// It is a test oracle, not a fast cuDNN. It follows the cuDNN API reference
// (https://docs.nvidia.com/deeplearning/cudnn/api/: cudnn_ops for tensors, filters, pooling and
// cudnnAddTensor; cudnn_cnn for convolutions) for semantics and argument validation, rejects
// what the real library rejects (with a diagnostic saying why, via tessera_emu::diagnose),
// and reproduces the behaviours a caller can get wrong:
//   * y = alpha * result + beta * y_prior, and y is not read when beta == 0 (cuDNN developer
//     guide, "Scaling Parameters": the output may then hold uninitialised data, NaN included);
//   * alpha and beta are float for FLOAT tensors and double for DOUBLE tensors;
//   * cudnnFind*AlgorithmEx overwrite their output buffer (y, dx, dw) with arbitrary values
//     (here 0xFF bytes, NaN), report algorithms that need more workspace than offered with a
//     failure status, and the convolution calls reject a workspace smaller than the chosen
//     algorithm needs (CUDNN_STATUS_BAD_PARAM) and scribble over the workspace they use;
//   * CUDNN_CONVOLUTION flips the filter, CUDNN_CROSS_CORRELATION does not.
// Emulator-only restrictions, each reported with a diagnostic: NCHW format only (tensors are
// fully packed, as cudnnSetTensor4dDescriptor makes them), FLOAT and DOUBLE data only, only
// the algorithms cudnnFind*AlgorithmEx returns, output tensors must not overlap inputs, every
// tensor must lie in device memory (CUDNN_STATUS_EXECUTION_FAILED otherwise: an illegal
// address on a GPU). Sums are accumulated in double. Calls run synchronously at call time;
// the stream set on the handle is recorded only.
//
// Nothing throws across the C API: every entry point catches and returns a status.
// The legacy API below is marked deprecated in cuDNN 9 (warnings only with
// CUDNN_WARN_DEPRECATED); the backend uses it, so the emulator implements it.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <atomic>
#include <cudnn.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "emu.hpp"

// ---- the opaque types behind the handle and descriptors (incomplete in the headers) -------
struct cudnnContext {
  cudaStream_t stream = nullptr;
  int device = 0;  // current device at cudnnCreate: the handle works only there
};
struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
};
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int k = 0, c = 0, h = 0, w = 0;
};
struct cudnnConvolutionStruct {
  bool set = false;
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
struct cudnnPoolingStruct {
  bool set = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int wh = 0, ww = 0, ph = 0, pw = 0, sh = 0, sw = 0;
};

namespace {

using tessera_emu::raw;

// ---- live-object registry: catches use of destroyed / never-created handles and descriptors
enum class Kind { Handle, Tensor, Filter, Conv, Pool };

std::mutex g_mutex;
std::unordered_map<const void*, Kind>& live() {
  static auto* m = new std::unordered_map<const void*, Kind>();  // never destroyed
  return *m;
}
void add_live(const void* p, Kind k) {
  std::lock_guard<std::mutex> lock(g_mutex);
  live()[p] = k;
}
bool is_live(const void* p, Kind k) {
  if (p == nullptr) return false;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = live().find(p);
  return it != live().end() && it->second == k;
}
bool remove_live(const void* p, Kind k) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = live().find(p);
  if (it == live().end() || it->second != k) return false;
  live().erase(it);
  return true;
}

cudnnStatus_t fail(cudnnStatus_t st, const std::string& msg) {
  tessera_emu::diagnose(msg);
  return st;
}

/// Carries a status out of nested validation helpers (caught in each entry point).
struct Failure {
  cudnnStatus_t status;
};
[[noreturn]] void raise(cudnnStatus_t st, const std::string& msg) {
  tessera_emu::diagnose(msg);
  throw Failure{st};
}

template <typename F>
cudnnStatus_t guarded(const char* fn, F&& f) {
  try {
    return f();
  } catch (const Failure& e) {
    return e.status;
  } catch (const std::bad_alloc&) {
    return fail(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, std::string(fn) + ": host allocation failed");
  } catch (...) {
    return fail(CUDNN_STATUS_INTERNAL_ERROR, std::string(fn) + ": unexpected exception");
  }
}

const char* dtype_name(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return "CUDNN_DATA_FLOAT";
    case CUDNN_DATA_DOUBLE: return "CUDNN_DATA_DOUBLE";
    case CUDNN_DATA_HALF: return "CUDNN_DATA_HALF";
    case CUDNN_DATA_BFLOAT16: return "CUDNN_DATA_BFLOAT16";
    case CUDNN_DATA_INT8: return "CUDNN_DATA_INT8";
    case CUDNN_DATA_INT32: return "CUDNN_DATA_INT32";
    case CUDNN_DATA_INT64: return "CUDNN_DATA_INT64";
    case CUDNN_DATA_UINT8: return "CUDNN_DATA_UINT8";
    default: return "another cudnnDataType_t";
  }
}
bool valid_dtype(int t) { return t >= int(CUDNN_DATA_FLOAT) && t <= int(CUDNN_DATA_COMPLEX_FP64); }
std::size_t elem_size(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? 8 : 4; }

void check_handle(cudnnHandle_t h, const char* fn) {
  if (h == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": handle is NULL");
  if (!is_live(h, Kind::Handle))
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": handle was not created by cudnnCreate or was destroyed");
  if (h->device != tessera_emu::current_device())
    raise(CUDNN_STATUS_EXECUTION_FAILED, std::string(fn) + ": handle created on cuda:" + std::to_string(h->device) +
                                             " used while cuda:" + std::to_string(tessera_emu::current_device()) +
                                             " is current");
}

const cudnnTensorStruct& tensor(cudnnTensorDescriptor_t d, const char* fn, const char* name) {
  if (d == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " is NULL");
  if (!is_live(d, Kind::Tensor))
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " is not a live tensor descriptor");
  if (!d->set)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " was never set (cudnnSetTensor4dDescriptor)");
  return *d;
}
const cudnnFilterStruct& filter(cudnnFilterDescriptor_t d, const char* fn, const char* name) {
  if (d == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " is NULL");
  if (!is_live(d, Kind::Filter))
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " is not a live filter descriptor");
  if (!d->set)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " was never set (cudnnSetFilter4dDescriptor)");
  return *d;
}
const cudnnConvolutionStruct& conv(cudnnConvolutionDescriptor_t d, const char* fn) {
  if (d == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": convDesc is NULL");
  if (!is_live(d, Kind::Conv))
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": convDesc is not a live convolution descriptor");
  if (!d->set)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": convDesc was never set (cudnnSetConvolution2dDescriptor)");
  return *d;
}
const cudnnPoolingStruct& pooling(cudnnPoolingDescriptor_t d, const char* fn) {
  if (d == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": poolingDesc is NULL");
  if (!is_live(d, Kind::Pool))
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": poolingDesc is not a live pooling descriptor");
  if (!d->set)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": poolingDesc was never set (cudnnSetPooling2dDescriptor)");
  return *d;
}

std::string dims(int n, int c, int h, int w) {
  std::ostringstream os;
  os << "[" << n << ", " << c << ", " << h << ", " << w << "]";
  return os.str();
}
std::string dims(const cudnnTensorStruct& t) { return dims(t.n, t.c, t.h, t.w); }
std::string dims(const cudnnFilterStruct& f) { return dims(f.k, f.c, f.h, f.w); }

std::size_t count(const cudnnTensorStruct& t) { return std::size_t(t.n) * t.c * t.h * t.w; }

/// The emulator computes FLOAT and DOUBLE only.
void require_computable(cudnnDataType_t t, const char* fn) {
  if (t != CUDNN_DATA_FLOAT && t != CUDNN_DATA_DOUBLE)
    raise(CUDNN_STATUS_NOT_SUPPORTED, std::string(fn) + ": data type " + dtype_name(t) +
                                          " is not supported by the emulator (FLOAT and DOUBLE only)");
}

void require_ptr(const void* p, const char* fn, const char* name) {
  if (p == nullptr) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": " + name + " is NULL");
}

/// A device buffer argument: checks it lies in one live device allocation.
void require_device(const void* p, std::size_t bytes, const char* fn, const char* name) {
  require_ptr(p, fn, name);
  if (bytes == 0) return;
  if (!tessera_emu::is_device_range(p, bytes)) {
    std::ostringstream os;
    os << fn << ": " << name << " [" << p << ", +" << bytes << " bytes) does not lie inside one live device allocation"
       << (tessera_emu::is_device_pointer(p) ? " (the buffer is too small)" : " (not device memory)");
    raise(CUDNN_STATUS_EXECUTION_FAILED, os.str());
  }
  if (const std::string wd = tessera_emu::wrong_device(p); !wd.empty())
    raise(CUDNN_STATUS_EXECUTION_FAILED, std::string(fn) + ": " + name + ": " + wd);
}

void require_disjoint(const void* out, std::size_t out_bytes, const char* out_name, const void* in,
                      std::size_t in_bytes, const char* in_name, const char* fn) {
  const char* a = static_cast<const char*>(out);
  const char* b = static_cast<const char*>(in);
  if (out_bytes == 0 || in_bytes == 0 || in == nullptr) return;
  if (a < b + in_bytes && b < a + out_bytes)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": output " + out_name + " overlaps input " + in_name +
                                      " (in-place operation is not supported; the result would be undefined on a GPU)");
}

/// The buffers of a convolution call: inputs a and b and output out all lie in device memory
/// of the current device, and out overlaps neither input.
void require_conv_buffers(const char* fn, const void* a, std::size_t a_bytes, const char* a_name, const void* b,
                          std::size_t b_bytes, const char* b_name, const void* out, std::size_t out_bytes,
                          const char* out_name) {
  require_device(a, a_bytes, fn, a_name);
  require_device(b, b_bytes, fn, b_name);
  require_device(out, out_bytes, fn, out_name);
  require_disjoint(out, out_bytes, out_name, a, a_bytes, a_name, fn);
  require_disjoint(out, out_bytes, out_name, b, b_bytes, b_name, fn);
}

/// alpha/beta: float for FLOAT (and HALF) tensors, double for DOUBLE tensors.
double scalar(const void* p, cudnnDataType_t t) {
  return t == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(p) : double(*static_cast<const float*>(p));
}

template <typename T>
void load(const void* base, std::size_t offset, std::size_t n, double* out) {
  const T* p = static_cast<const T*>(base) + offset;
  for (std::size_t i = 0; i < n; ++i) out[i] = double(p[i]);
}
void load(cudnnDataType_t t, const void* base, std::size_t offset, std::size_t n, double* out) {
  if (t == CUDNN_DATA_DOUBLE) load<double>(base, offset, n, out);
  else load<float>(base, offset, n, out);
}
/// out[i] = alpha * acc[i] + beta * out[i]; out is not read when beta == 0.
template <typename T>
void blend(void* base, std::size_t offset, std::size_t n, const double* acc, double alpha, double beta) {
  T* p = static_cast<T*>(base) + offset;
  if (beta == 0.0) {
    for (std::size_t i = 0; i < n; ++i) p[i] = T(alpha * acc[i]);
  } else {
    for (std::size_t i = 0; i < n; ++i) p[i] = T(alpha * acc[i] + beta * double(p[i]));
  }
}
void blend(cudnnDataType_t t, void* base, std::size_t offset, std::size_t n, const double* acc, double alpha,
           double beta) {
  if (t == CUDNN_DATA_DOUBLE) blend<double>(base, offset, n, acc, alpha, beta);
  else blend<float>(base, offset, n, acc, alpha, beta);
}

// ---- convolution geometry and validation ------------------------------------------------------

struct ConvGeom {
  int N, C, H, W;        // x / dx
  int K, Cg, R, S;       // w / dw: K output channels, Cg = input channels per group
  int G, Kg;             // groups, output channels per group
  int OH, OW;            // y / dy
  int ph, pw, sh, sw, dh, dw;
  bool flip;             // CUDNN_CONVOLUTION: filter flipped in both spatial dims
  cudnnDataType_t dtype;
  std::size_t elem;
  std::size_t x_bytes() const { return std::size_t(N) * C * H * W * elem; }
  std::size_t w_bytes() const { return std::size_t(K) * Cg * R * S * elem; }
  std::size_t y_bytes() const { return std::size_t(N) * K * OH * OW * elem; }
};

/// Validation shared by cudnnConvolutionForward / BackwardData / BackwardFilter and the Find
/// functions, following their "Returns" sections: CUDNN_STATUS_BAD_PARAM for non-matching
/// data types, batch sizes, input feature maps per group (x.C != w.C * groupCount), output
/// channel counts (y.C != w.K, or w.K not a multiple of groupCount) and a filter larger than
/// the zero-padded input; CUDNN_STATUS_NOT_SUPPORTED for y spatial sizes that differ from
/// the convolution's output size (cudnnGetConvolution2dForwardOutputDim:
/// 1 + (in + 2*pad - ((filter - 1)*dilation + 1)) / stride) and for data/compute type
/// combinations outside the documented configurations (FLOAT_CONFIG: all FLOAT with FLOAT
/// compute; TRUE_DOUBLE_CONFIG: all DOUBLE with DOUBLE compute).
ConvGeom conv_geom(const char* fn, cudnnTensorDescriptor_t xDesc, const char* xname, cudnnFilterDescriptor_t wDesc,
                   const char* wname, cudnnConvolutionDescriptor_t convDesc, cudnnTensorDescriptor_t yDesc,
                   const char* yname) {
  const cudnnTensorStruct& x = tensor(xDesc, fn, xname);
  const cudnnFilterStruct& w = filter(wDesc, fn, wname);
  const cudnnConvolutionStruct& cd = conv(convDesc, fn);
  const cudnnTensorStruct& y = tensor(yDesc, fn, yname);
  const std::string f(fn);
  if (x.dtype != w.dtype || x.dtype != y.dtype)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": data types differ: " + xname + " " + dtype_name(x.dtype) + ", " + wname +
                                      " " + dtype_name(w.dtype) + ", " + yname + " " + dtype_name(y.dtype));
  require_computable(x.dtype, fn);
  if (cd.compute != x.dtype)
    raise(CUDNN_STATUS_NOT_SUPPORTED, f + ": tensors are " + dtype_name(x.dtype) + " but the convolution's computeType is " +
                                          dtype_name(cd.compute) +
                                          " (supported: FLOAT data with FLOAT compute, DOUBLE data with DOUBLE compute)");
  ConvGeom g{};
  g.N = x.n; g.C = x.c; g.H = x.h; g.W = x.w;
  g.K = w.k; g.Cg = w.c; g.R = w.h; g.S = w.w;
  g.G = cd.groups;
  g.ph = cd.pad_h; g.pw = cd.pad_w; g.sh = cd.u; g.sw = cd.v; g.dh = cd.dil_h; g.dw = cd.dil_w;
  g.flip = cd.mode == CUDNN_CONVOLUTION;
  g.dtype = x.dtype;
  g.elem = elem_size(x.dtype);
  if (int64_t(w.c) * g.G != x.c)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": " + xname + " " + dims(x) + " has " + std::to_string(x.c) + " channels but " +
                                      wname + " " + dims(w) + " times groupCount " + std::to_string(g.G) + " gives " +
                                      std::to_string(int64_t(w.c) * g.G));
  if (w.k % g.G != 0)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": " + wname + " " + dims(w) + " has " + std::to_string(w.k) +
                                      " output channels, not a multiple of groupCount " + std::to_string(g.G));
  g.Kg = w.k / g.G;
  const int64_t eff_r = int64_t(g.R - 1) * g.dh + 1, eff_s = int64_t(g.S - 1) * g.dw + 1;
  if (eff_r > int64_t(g.H) + 2 * g.ph || eff_s > int64_t(g.W) + 2 * g.pw)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": the (dilated) filter " + std::to_string(eff_r) + " x " + std::to_string(eff_s) +
                                      " is larger than the zero-padded input " + std::to_string(g.H + 2 * g.ph) +
                                      " x " + std::to_string(g.W + 2 * g.pw));
  const int64_t oh = 1 + (int64_t(g.H) + 2 * g.ph - eff_r) / g.sh;
  const int64_t ow = 1 + (int64_t(g.W) + 2 * g.pw - eff_s) / g.sw;
  if (y.n != x.n)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": batch sizes differ: " + xname + " " + dims(x) + ", " + yname + " " + dims(y));
  if (y.c != w.k)
    raise(CUDNN_STATUS_BAD_PARAM, f + ": " + yname + " " + dims(y) + " has " + std::to_string(y.c) +
                                      " channels but " + wname + " " + dims(w) + " has " + std::to_string(w.k) +
                                      " output channels");
  if (y.h != oh || y.w != ow) {
    std::ostringstream os;
    os << f << ": " << yname << " " << dims(y) << " does not have the convolution's output size " << oh << " x " << ow
       << " (input " << g.H << " x " << g.W << ", filter " << g.R << " x " << g.S << ", pad " << g.ph << "," << g.pw
       << ", stride " << g.sh << "," << g.sw << ", dilation " << g.dh << "," << g.dw << ")";
    raise(CUDNN_STATUS_NOT_SUPPORTED, os.str());
  }
  g.OH = y.h;
  g.OW = y.w;
  return g;
}

/// Output positions o in [0, out) whose input index o*stride + off lies in [0, in):
/// returns [lo, hi) (empty when lo >= hi).
inline void valid_range(int out, int stride, int64_t off, int in, int& lo, int& hi) {
  // o*stride + off >= 0  <=>  o >= ceil(-off / stride)
  int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
  // o*stride + off <= in - 1  <=>  o <= floor((in - 1 - off) / stride)
  const int64_t t = int64_t(in) - 1 - off;
  int64_t h = t < 0 ? 0 : t / stride + 1;
  if (h > out) h = out;
  if (l > h) l = h;
  lo = int(l);
  hi = int(h);
}

/// Filter element used for tap (r, s) of the sliding window.
inline std::size_t filter_index(const ConvGeom& g, int k, int cc, int r, int s) {
  const int fr = g.flip ? g.R - 1 - r : r, fs = g.flip ? g.S - 1 - s : s;
  return ((std::size_t(k) * g.Cg + cc) * g.R + fr) * g.S + fs;
}

// y[n,k,oh,ow] = sum_{cc,r,s} x[n, g*Cg+cc, oh*sh - ph + r*dh, ow*sw - pw + s*dw] * w[k,cc,r',s']
// (zero outside the input), with (r',s') = (r,s) for cross-correlation and flipped for
// convolution; k in group g = k / Kg.
void conv_forward_compute(const ConvGeom& g, const void* x, const void* w, void* y, double alpha, double beta) {
  std::vector<double> wd(std::size_t(g.K) * g.Cg * g.R * g.S);
  load(g.dtype, w, 0, wd.size(), wd.data());
  const std::size_t xplane = std::size_t(g.H) * g.W, yplane = std::size_t(g.OH) * g.OW;
  std::vector<double> xd(std::size_t(g.C) * xplane), acc(yplane);
  for (int n = 0; n < g.N; ++n) {
    load(g.dtype, x, std::size_t(n) * g.C * xplane, xd.size(), xd.data());
    for (int k = 0; k < g.K; ++k) {
      const int grp = k / g.Kg;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int cc = 0; cc < g.Cg; ++cc) {
        const double* xp = xd.data() + std::size_t(grp * g.Cg + cc) * xplane;
        for (int r = 0; r < g.R; ++r) {
          int oh_lo, oh_hi;
          valid_range(g.OH, g.sh, int64_t(r) * g.dh - g.ph, g.H, oh_lo, oh_hi);
          for (int s = 0; s < g.S; ++s) {
            const double wv = wd[filter_index(g, k, cc, r, s)];
            const int64_t off = int64_t(s) * g.dw - g.pw;
            int ow_lo, ow_hi;
            valid_range(g.OW, g.sw, off, g.W, ow_lo, ow_hi);
            for (int oh = oh_lo; oh < oh_hi; ++oh) {
              const double* xr = xp + std::size_t(oh * g.sh - g.ph + r * g.dh) * g.W + off;
              double* ar = acc.data() + std::size_t(oh) * g.OW;
              if (g.sw == 1) {
                for (int ow = ow_lo; ow < ow_hi; ++ow) ar[ow] += wv * xr[ow];
              } else {
                for (int ow = ow_lo; ow < ow_hi; ++ow) ar[ow] += wv * xr[int64_t(ow) * g.sw];
              }
            }
          }
        }
      }
      blend(g.dtype, y, (std::size_t(n) * g.K + k) * yplane, yplane, acc.data(), alpha, beta);
    }
  }
}

// dx[n,c,ih,iw] = sum over every (k, r, s, oh, ow) whose window tap reads x[n,c,ih,iw] of
// w[k,cc,r',s'] * dy[n,k,oh,ow]: the adjoint of the forward convolution with respect to x.
void conv_backward_data_compute(const ConvGeom& g, const void* w, const void* dy, void* dx, double alpha,
                                double beta) {
  std::vector<double> wd(std::size_t(g.K) * g.Cg * g.R * g.S);
  load(g.dtype, w, 0, wd.size(), wd.data());
  const std::size_t xplane = std::size_t(g.H) * g.W, yplane = std::size_t(g.OH) * g.OW;
  std::vector<double> dyd(std::size_t(g.K) * yplane), acc(std::size_t(g.C) * xplane);
  for (int n = 0; n < g.N; ++n) {
    load(g.dtype, dy, std::size_t(n) * g.K * yplane, dyd.size(), dyd.data());
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int k = 0; k < g.K; ++k) {
      const int grp = k / g.Kg;
      const double* gp = dyd.data() + std::size_t(k) * yplane;
      for (int cc = 0; cc < g.Cg; ++cc) {
        double* ap = acc.data() + std::size_t(grp * g.Cg + cc) * xplane;
        for (int r = 0; r < g.R; ++r) {
          int oh_lo, oh_hi;
          valid_range(g.OH, g.sh, int64_t(r) * g.dh - g.ph, g.H, oh_lo, oh_hi);
          for (int s = 0; s < g.S; ++s) {
            const double wv = wd[filter_index(g, k, cc, r, s)];
            const int64_t off = int64_t(s) * g.dw - g.pw;
            int ow_lo, ow_hi;
            valid_range(g.OW, g.sw, off, g.W, ow_lo, ow_hi);
            for (int oh = oh_lo; oh < oh_hi; ++oh) {
              double* ar = ap + std::size_t(oh * g.sh - g.ph + r * g.dh) * g.W + off;
              const double* gr = gp + std::size_t(oh) * g.OW;
              for (int ow = ow_lo; ow < ow_hi; ++ow) ar[int64_t(ow) * g.sw] += wv * gr[ow];
            }
          }
        }
      }
    }
    blend(g.dtype, dx, std::size_t(n) * g.C * xplane, acc.size(), acc.data(), alpha, beta);
  }
}

// dw[k,cc,r',s'] = sum_{n,oh,ow} x[n, g*Cg+cc, oh*sh - ph + r*dh, ow*sw - pw + s*dw] * dy[n,k,oh,ow]:
// the adjoint of the forward convolution with respect to w.
void conv_backward_filter_compute(const ConvGeom& g, const void* x, const void* dy, void* dw, double alpha,
                                  double beta) {
  const std::size_t xplane = std::size_t(g.H) * g.W, yplane = std::size_t(g.OH) * g.OW;
  std::vector<double> xd(std::size_t(g.C) * xplane), dyd(std::size_t(g.K) * yplane);
  std::vector<double> acc(std::size_t(g.K) * g.Cg * g.R * g.S, 0.0);
  for (int n = 0; n < g.N; ++n) {
    load(g.dtype, x, std::size_t(n) * g.C * xplane, xd.size(), xd.data());
    load(g.dtype, dy, std::size_t(n) * g.K * yplane, dyd.size(), dyd.data());
    for (int k = 0; k < g.K; ++k) {
      const int grp = k / g.Kg;
      const double* gp = dyd.data() + std::size_t(k) * yplane;
      for (int cc = 0; cc < g.Cg; ++cc) {
        const double* xp = xd.data() + std::size_t(grp * g.Cg + cc) * xplane;
        for (int r = 0; r < g.R; ++r) {
          int oh_lo, oh_hi;
          valid_range(g.OH, g.sh, int64_t(r) * g.dh - g.ph, g.H, oh_lo, oh_hi);
          for (int s = 0; s < g.S; ++s) {
            const int64_t off = int64_t(s) * g.dw - g.pw;
            int ow_lo, ow_hi;
            valid_range(g.OW, g.sw, off, g.W, ow_lo, ow_hi);
            double sum = 0.0;
            for (int oh = oh_lo; oh < oh_hi; ++oh) {
              const double* xr = xp + std::size_t(oh * g.sh - g.ph + r * g.dh) * g.W + off;
              const double* gr = gp + std::size_t(oh) * g.OW;
              for (int ow = ow_lo; ow < ow_hi; ++ow) sum += xr[int64_t(ow) * g.sw] * gr[ow];
            }
            acc[filter_index(g, k, cc, r, s)] += sum;
          }
        }
      }
    }
  }
  blend(g.dtype, dw, 0, acc.size(), acc.data(), alpha, beta);
}

// ---- the algorithms the emulator offers -----------------------------------------------------------
// Each direction offers three algorithms: one needing no workspace (slowest), one needing a
// few KB and one needing an im2col-sized buffer (fastest), so a caller that picks the fastest
// must pass the workspace it was told about. Times are fake (ms), fixed ratios.
struct AlgoInfo {
  int algo;
  std::size_t workspace;
  float time;
  cudnnDeterminism_t determinism;
};

std::size_t small_ws(const ConvGeom& g) { return 4096 + sizeof(int) * std::size_t(g.R) * g.S * g.Cg; }
std::size_t im2col_ws(const ConvGeom& g, bool input_side) {
  // forward / backward-filter: one group's im2col of one image; backward-data: col2im of it.
  const std::size_t cols = input_side ? std::size_t(g.OH) * g.OW : std::size_t(g.H) * g.W;
  return std::size_t(g.Cg) * g.R * g.S * cols * g.elem;
}

enum class Dir { Forward, BackwardData, BackwardFilter };

std::vector<AlgoInfo> algorithms(Dir d, const ConvGeom& g) {
  switch (d) {
    case Dir::Forward:
      return {{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0, 3.0f, CUDNN_DETERMINISTIC},
              {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, small_ws(g), 2.0f, CUDNN_DETERMINISTIC},
              {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, im2col_ws(g, true), 1.0f, CUDNN_DETERMINISTIC}};
    case Dir::BackwardData:
      return {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, 0, 3.0f, CUDNN_NON_DETERMINISTIC},
              {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, small_ws(g), 2.0f, CUDNN_DETERMINISTIC},
              {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, im2col_ws(g, false), 1.0f, CUDNN_DETERMINISTIC}};
    case Dir::BackwardFilter:
      return {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, 0, 3.0f, CUDNN_NON_DETERMINISTIC},
              {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, small_ws(g), 2.0f, CUDNN_DETERMINISTIC},
              {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, im2col_ws(g, true), 1.0f, CUDNN_NON_DETERMINISTIC}};
  }
  return {};
}

const char* dir_name(Dir d) {
  return d == Dir::Forward ? "forward" : d == Dir::BackwardData ? "backward-data" : "backward-filter";
}

/// The workspace algorithm `algo` needs; rejects values outside the enum (BAD_PARAM) and
/// algorithms the emulator does not offer (NOT_SUPPORTED).
std::atomic<std::uint64_t> g_nondeterministic_calls{0};

std::size_t algo_workspace(Dir d, int algo, int algo_count, const ConvGeom& g, const char* fn) {
  if (algo < 0 || algo >= algo_count)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": algo " + std::to_string(algo) + " is not a valid " +
                                      dir_name(d) + " algorithm");
  for (const AlgoInfo& a : algorithms(d, g))
    if (a.algo == algo) {
      if (a.determinism == CUDNN_NON_DETERMINISTIC) ++g_nondeterministic_calls;
      return a.workspace;
    }
  std::string offered;
  for (const AlgoInfo& a : algorithms(d, g)) offered += (offered.empty() ? "" : ", ") + std::to_string(a.algo);
  raise(CUDNN_STATUS_NOT_SUPPORTED, std::string(fn) + ": the emulator does not implement " + dir_name(d) +
                                        " algo " + std::to_string(algo) + " (it offers " + offered +
                                        "; choose one returned by cudnnFind*AlgorithmEx)");
}

/// Checks the workspace against what the algorithm needs (BAD_PARAM when too small, as the
/// real library reports it) and scribbles over the part the algorithm uses.
void use_workspace(void* ws, std::size_t ws_bytes, std::size_t needed, const char* fn, int algo) {
  if (ws == nullptr) ws_bytes = 0;  // a NULL workspace is a workspace of 0 bytes
  if (ws_bytes < needed) {
    std::ostringstream os;
    os << fn << ": algo " << algo << " needs " << needed << " bytes of workspace, " << ws_bytes << " given";
    raise(CUDNN_STATUS_BAD_PARAM, os.str());
  }
  if (needed == 0) return;
  require_device(ws, ws_bytes, fn, "workSpace");
  std::memset(ws, 0xFF, needed);
}

/// Shared body of the three cudnnFind*AlgorithmEx.
template <typename Perf>
cudnnStatus_t find_algorithms(Dir d, const ConvGeom& g, const char* fn, void* out, std::size_t out_bytes,
                              int requested, int* returned, Perf* perf, void* ws, std::size_t ws_bytes,
                              cudnnMathType_t math) {
  if (returned == nullptr || perf == nullptr)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": returnedAlgoCount and perfResults must not be NULL");
  if (requested < 1)
    raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": requestedAlgoCount must be at least 1, got " +
                                      std::to_string(requested));
  if (ws == nullptr) ws_bytes = 0;
  if (ws_bytes > 0) require_device(ws, ws_bytes, fn, "workSpace");
  std::vector<AlgoInfo> fit, too_big;
  std::size_t used = 0;
  for (const AlgoInfo& a : algorithms(d, g)) {
    if (a.workspace <= ws_bytes) {
      fit.push_back(a);
      used = std::max(used, a.workspace);
    } else {
      too_big.push_back(a);
    }
  }
  std::sort(fit.begin(), fit.end(), [](const AlgoInfo& a, const AlgoInfo& b) { return a.time < b.time; });
  // Trying the algorithms overwrites the output (and the workspace) with arbitrary values.
  std::memset(out, 0xFF, out_bytes);
  if (used > 0) std::memset(ws, 0xFF, used);
  std::vector<Perf> all;
  for (const AlgoInfo& a : fit) {
    Perf p{};
    p.algo = decltype(p.algo)(a.algo);
    p.status = CUDNN_STATUS_SUCCESS;
    p.time = a.time;
    p.memory = a.workspace;
    p.determinism = a.determinism;
    p.mathType = math;
    all.push_back(p);
  }
  // Could not run: not enough workspace. cudnn_cnn, cudnnConvolution*AlgoPerf_t.status:
  // "CUDNN_STATUS_ALLOC_FAILED if ... the provided workspace is insufficient" (in cuDNN 9 a
  // deprecated alias of CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED).
  // Callers must pick the first entry whose status is CUDNN_STATUS_SUCCESS.
  for (const AlgoInfo& a : too_big) {
    Perf p{};
    p.algo = decltype(p.algo)(a.algo);
    p.status = CUDNN_STATUS_ALLOC_FAILED;
    p.time = -1.0f;
    p.memory = a.workspace;
    p.determinism = a.determinism;
    p.mathType = math;
    all.push_back(p);
  }
  const int n = std::min<int>(requested, int(all.size()));
  for (int i = 0; i < n; ++i) perf[i] = all[std::size_t(i)];
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

// ---- pooling ---------------------------------------------------------------------------------------

template <typename T>
void pool_forward_compute(const cudnnPoolingStruct& pd, const cudnnTensorStruct& xd, const cudnnTensorStruct& yd,
                          const void* xv, void* yv, double alpha, double beta) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const bool is_max = pd.mode == CUDNN_POOLING_MAX || pd.mode == CUDNN_POOLING_MAX_DETERMINISTIC;
  const bool propagate = pd.nan == CUDNN_PROPAGATE_NAN;
  const std::size_t xplane = std::size_t(xd.h) * xd.w, yplane = std::size_t(yd.h) * yd.w;
  for (std::size_t nc = 0; nc < std::size_t(xd.n) * xd.c; ++nc) {
    const T* xp = x + nc * xplane;
    T* yp = y + nc * yplane;
    for (int oh = 0; oh < yd.h; ++oh) {
      for (int ow = 0; ow < yd.w; ++ow) {
        const int hs = oh * pd.sh - pd.ph, ws = ow * pd.sw - pd.pw;
        const int h0 = std::max(hs, 0), h1 = std::min(hs + pd.wh, xd.h);
        const int w0 = std::max(ws, 0), w1 = std::min(ws + pd.ww, xd.w);
        double r;
        if (is_max) {
          // Padding never wins: only elements inside the input take part.
          double best = -std::numeric_limits<double>::infinity();
          bool nan = false;
          for (int ih = h0; ih < h1; ++ih)
            for (int iw = w0; iw < w1; ++iw) {
              const double v = double(xp[std::size_t(ih) * xd.w + iw]);
              if (v != v) nan = true;
              else if (v > best) best = v;
            }
          r = (nan && propagate) ? std::numeric_limits<double>::quiet_NaN() : best;
        } else {
          double sum = 0.0;
          for (int ih = h0; ih < h1; ++ih)
            for (int iw = w0; iw < w1; ++iw) sum += double(xp[std::size_t(ih) * xd.w + iw]);
          const int n_in = (h1 > h0 ? h1 - h0 : 0) * (w1 > w0 ? w1 - w0 : 0);
          const int divisor = pd.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? pd.wh * pd.ww : n_in;
          r = divisor > 0 ? sum / divisor : 0.0;
        }
        T& out = yp[std::size_t(oh) * yd.w + ow];
        out = beta == 0.0 ? T(alpha * r) : T(alpha * r + beta * double(out));
      }
    }
  }
}

}  // namespace

extern "C" {

// ---- handle, version, errors -------------------------------------------------------------------------

// cudnnGetVersion (cudnn_graph, "cudnnGetVersion()"): the library version, here the header's
// CUDNN_VERSION (major*10000 + minor*100 + patch for cuDNN 9).
size_t CUDNNWINAPI cudnnGetVersion(void) { return size_t(CUDNN_VERSION); }

// cudnnGetCudartVersion (cudnn_graph, "cudnnGetCudartVersion()"): the CUDA runtime version the
// library was built with: here the header's CUDART_VERSION.
size_t CUDNNWINAPI cudnnGetCudartVersion(void) { return size_t(CUDART_VERSION); }

// cudnnGetErrorString (cudnn_graph, "cudnnGetErrorString()"): the status's name as a string.
const char* CUDNNWINAPI cudnnGetErrorString(cudnnStatus_t status) {
  switch (raw(status)) {
#define TESSERA_EMU_STATUS(s) \
  case s: return #s;
    TESSERA_EMU_STATUS(CUDNN_STATUS_SUCCESS)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_INITIALIZED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_DEPRECATED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_LICENSE_ERROR)
    TESSERA_EMU_STATUS(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    TESSERA_EMU_STATUS(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    TESSERA_EMU_STATUS(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INVALID_VALUE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
    TESSERA_EMU_STATUS(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
    TESSERA_EMU_STATUS(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED)
    TESSERA_EMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
    TESSERA_EMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
    TESSERA_EMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
    TESSERA_EMU_STATUS(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef TESSERA_EMU_STATUS
    default: return "CUDNN_STATUS_UNKNOWN";
  }
}

// cudnnCreate (cudnn_graph, "cudnnCreate()"): allocates a handle; BAD_PARAM for a NULL
// handle pointer.
cudnnStatus_t CUDNNWINAPI cudnnCreate(cudnnHandle_t* handle) {
  return guarded("cudnnCreate", [&] {
    require_ptr(handle, "cudnnCreate", "handle");
    auto* h = new cudnnContext();
    h->device = tessera_emu::current_device();
    add_live(h, Kind::Handle);
    *handle = h;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnDestroy (cudnn_graph, "cudnnDestroy()"): releases the handle. The emulator reports a
// NULL, unknown or already destroyed handle as BAD_PARAM.
cudnnStatus_t CUDNNWINAPI cudnnDestroy(cudnnHandle_t handle) {
  if (handle == nullptr || !remove_live(handle, Kind::Handle))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroy: handle is NULL, unknown or already destroyed");
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnSetStream (cudnn_graph, "cudnnSetStream()"): sets the stream of later calls on the
// handle (recorded only: the emulator executes calls synchronously).
cudnnStatus_t CUDNNWINAPI cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  return guarded("cudnnSetStream", [&] {
    check_handle(handle, "cudnnSetStream");
    handle->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
  });
}

// ---- descriptors ---------------------------------------------------------------------------------------

// cudnnCreateTensorDescriptor (cudnn_ops): BAD_PARAM for a NULL pointer.
cudnnStatus_t CUDNNWINAPI cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  return guarded("cudnnCreateTensorDescriptor", [&] {
    require_ptr(tensorDesc, "cudnnCreateTensorDescriptor", "tensorDesc");
    auto* d = new cudnnTensorStruct();
    add_live(d, Kind::Tensor);
    *tensorDesc = d;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetTensor4dDescriptor (cudnn_ops): a 4-d tensor, strides implied by the format (fully
// packed). BAD_PARAM when a dimension is not positive (the Nd form documents "negative or
// zero") or format/dataType is not a valid enumerant; NOT_SUPPORTED when the tensor exceeds
// 2 Giga-elements. Emulator-only: formats other than CUDNN_TENSOR_NCHW are NOT_SUPPORTED.
cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                                     cudnnDataType_t dataType, int n, int c, int h, int w) {
  const char* fn = "cudnnSetTensor4dDescriptor";
  return guarded(fn, [&] {
    require_ptr(tensorDesc, fn, "tensorDesc");
    if (!is_live(tensorDesc, Kind::Tensor)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live tensor descriptor");
    if (raw(format) < 0 || raw(format) > int(CUDNN_TENSOR_NCHW_VECT_C))
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": invalid format " + std::to_string(raw(format)));
    if (!valid_dtype(raw(dataType)))
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": invalid dataType " + std::to_string(raw(dataType)));
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": dimensions " + dims(n, c, h, w) + " must all be positive");
    if (int64_t(n) * c * h * w > (int64_t(1) << 31))
      raise(CUDNN_STATUS_NOT_SUPPORTED, std::string(fn) + ": " + dims(n, c, h, w) + " exceeds 2 Giga-elements");
    if (format != CUDNN_TENSOR_NCHW)
      raise(CUDNN_STATUS_NOT_SUPPORTED, std::string(fn) + ": the emulator supports only CUDNN_TENSOR_NCHW");
    tensorDesc->dtype = dataType;
    tensorDesc->n = n; tensorDesc->c = c; tensorDesc->h = h; tensorDesc->w = w;
    tensorDesc->set = true;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnDestroyTensorDescriptor (cudnn_ops): NULL is a no-op; the emulator reports an unknown
// or already destroyed descriptor as BAD_PARAM.
cudnnStatus_t CUDNNWINAPI cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  if (tensorDesc == nullptr) return CUDNN_STATUS_SUCCESS;
  if (!remove_live(tensorDesc, Kind::Tensor))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyTensorDescriptor: unknown or already destroyed descriptor");
  delete tensorDesc;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnCreateFilterDescriptor (cudnn_ops).
cudnnStatus_t CUDNNWINAPI cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  return guarded("cudnnCreateFilterDescriptor", [&] {
    require_ptr(filterDesc, "cudnnCreateFilterDescriptor", "filterDesc");
    auto* d = new cudnnFilterStruct();
    add_live(d, Kind::Filter);
    *filterDesc = d;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetFilter4dDescriptor (cudnn_ops): filter [k output maps, c input maps per group, h, w].
// BAD_PARAM when k, c, h or w is negative (the emulator also rejects 0) or dataType/format is
// not a valid enumerant. Emulator-only: formats other than CUDNN_TENSOR_NCHW are NOT_SUPPORTED.
cudnnStatus_t CUDNNWINAPI cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                                     cudnnTensorFormat_t format, int k, int c, int h, int w) {
  const char* fn = "cudnnSetFilter4dDescriptor";
  return guarded(fn, [&] {
    require_ptr(filterDesc, fn, "filterDesc");
    if (!is_live(filterDesc, Kind::Filter)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live filter descriptor");
    if (!valid_dtype(raw(dataType)))
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": invalid dataType " + std::to_string(raw(dataType)));
    if (raw(format) < 0 || raw(format) > int(CUDNN_TENSOR_NCHW_VECT_C))
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": invalid format " + std::to_string(raw(format)));
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": dimensions " + dims(k, c, h, w) + " must all be positive");
    if (format != CUDNN_TENSOR_NCHW)
      raise(CUDNN_STATUS_NOT_SUPPORTED, std::string(fn) + ": the emulator supports only CUDNN_TENSOR_NCHW");
    filterDesc->dtype = dataType;
    filterDesc->k = k; filterDesc->c = c; filterDesc->h = h; filterDesc->w = w;
    filterDesc->set = true;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnDestroyFilterDescriptor (cudnn_ops).
cudnnStatus_t CUDNNWINAPI cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  if (filterDesc == nullptr) return CUDNN_STATUS_SUCCESS;
  if (!remove_live(filterDesc, Kind::Filter))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyFilterDescriptor: unknown or already destroyed descriptor");
  delete filterDesc;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnCreateConvolutionDescriptor (cudnn_cnn): group count 1, CUDNN_DEFAULT_MATH.
cudnnStatus_t CUDNNWINAPI cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return guarded("cudnnCreateConvolutionDescriptor", [&] {
    require_ptr(convDesc, "cudnnCreateConvolutionDescriptor", "convDesc");
    auto* d = new cudnnConvolutionStruct();
    add_live(d, Kind::Conv);
    *convDesc = d;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetConvolution2dDescriptor (cudnn_cnn): BAD_PARAM when pad_h or pad_w is negative, u or
// v (strides) is not positive, dilation_h or dilation_w is not positive, or mode / computeType
// is not a valid enumerant.
cudnnStatus_t CUDNNWINAPI cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w,
                                                          int u, int v, int dilation_h, int dilation_w,
                                                          cudnnConvolutionMode_t mode, cudnnDataType_t computeType) {
  const char* fn = "cudnnSetConvolution2dDescriptor";
  return guarded(fn, [&] {
    require_ptr(convDesc, fn, "convDesc");
    if (!is_live(convDesc, Kind::Conv)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live convolution descriptor");
    std::ostringstream os;
    os << fn << "(pad " << pad_h << "," << pad_w << ", stride " << u << "," << v << ", dilation " << dilation_h << ","
       << dilation_w << "): ";
    if (pad_h < 0 || pad_w < 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "padding must be >= 0");
    if (u <= 0 || v <= 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "strides must be > 0");
    if (dilation_h <= 0 || dilation_w <= 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "dilations must be > 0");
    if (raw(mode) != CUDNN_CONVOLUTION && raw(mode) != CUDNN_CROSS_CORRELATION)
      raise(CUDNN_STATUS_BAD_PARAM, os.str() + "invalid mode " + std::to_string(raw(mode)));
    if (!valid_dtype(raw(computeType)))
      raise(CUDNN_STATUS_BAD_PARAM, os.str() + "invalid computeType " + std::to_string(raw(computeType)));
    convDesc->pad_h = pad_h; convDesc->pad_w = pad_w;
    convDesc->u = u; convDesc->v = v;
    convDesc->dil_h = dilation_h; convDesc->dil_w = dilation_w;
    convDesc->mode = mode;
    convDesc->compute = computeType;
    convDesc->set = true;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetConvolutionGroupCount (cudnn_cnn): BAD_PARAM for an invalid descriptor or a group
// count below 1.
cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  const char* fn = "cudnnSetConvolutionGroupCount";
  return guarded(fn, [&] {
    require_ptr(convDesc, fn, "convDesc");
    if (!is_live(convDesc, Kind::Conv)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live convolution descriptor");
    if (groupCount < 1) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": groupCount " + std::to_string(groupCount) + " < 1");
    convDesc->groups = groupCount;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetConvolutionMathType (cudnn_cnn): BAD_PARAM for an invalid descriptor or a value
// that is not a cudnnMathType_t. The math type is recorded and reported in the Find results;
// the emulator always computes in full precision (double accumulation).
cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
  const char* fn = "cudnnSetConvolutionMathType";
  return guarded(fn, [&] {
    require_ptr(convDesc, fn, "convDesc");
    if (!is_live(convDesc, Kind::Conv)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live convolution descriptor");
    if (raw(mathType) < int(CUDNN_DEFAULT_MATH) || raw(mathType) > int(CUDNN_FMA_MATH))
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": invalid mathType " + std::to_string(raw(mathType)));
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnDestroyConvolutionDescriptor (cudnn_cnn).
cudnnStatus_t CUDNNWINAPI cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  if (convDesc == nullptr) return CUDNN_STATUS_SUCCESS;
  if (!remove_live(convDesc, Kind::Conv))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyConvolutionDescriptor: unknown or already destroyed descriptor");
  delete convDesc;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnCreatePoolingDescriptor (cudnn_ops).
cudnnStatus_t CUDNNWINAPI cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* poolingDesc) {
  return guarded("cudnnCreatePoolingDescriptor", [&] {
    require_ptr(poolingDesc, "cudnnCreatePoolingDescriptor", "poolingDesc");
    auto* d = new cudnnPoolingStruct();
    add_live(d, Kind::Pool);
    *poolingDesc = d;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnSetPooling2dDescriptor (cudnn_ops): BAD_PARAM when a window dimension or stride is not
// positive, a padding is negative, or mode / maxpoolingNanOpt is not a valid enumerant.
cudnnStatus_t CUDNNWINAPI cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t poolingDesc, cudnnPoolingMode_t mode,
                                                      cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight,
                                                      int windowWidth, int verticalPadding, int horizontalPadding,
                                                      int verticalStride, int horizontalStride) {
  const char* fn = "cudnnSetPooling2dDescriptor";
  return guarded(fn, [&] {
    require_ptr(poolingDesc, fn, "poolingDesc");
    if (!is_live(poolingDesc, Kind::Pool)) raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": not a live pooling descriptor");
    std::ostringstream os;
    os << fn << "(window " << windowHeight << "x" << windowWidth << ", pad " << verticalPadding << ","
       << horizontalPadding << ", stride " << verticalStride << "," << horizontalStride << "): ";
    if (raw(mode) < int(CUDNN_POOLING_MAX) || raw(mode) > int(CUDNN_POOLING_MAX_DETERMINISTIC))
      raise(CUDNN_STATUS_BAD_PARAM, os.str() + "invalid mode " + std::to_string(raw(mode)));
    if (raw(maxpoolingNanOpt) != CUDNN_NOT_PROPAGATE_NAN && raw(maxpoolingNanOpt) != CUDNN_PROPAGATE_NAN)
      raise(CUDNN_STATUS_BAD_PARAM, os.str() + "invalid maxpoolingNanOpt " + std::to_string(raw(maxpoolingNanOpt)));
    if (windowHeight <= 0 || windowWidth <= 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "window must be positive");
    if (verticalStride <= 0 || horizontalStride <= 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "strides must be positive");
    if (verticalPadding < 0 || horizontalPadding < 0) raise(CUDNN_STATUS_BAD_PARAM, os.str() + "padding must be >= 0");
    poolingDesc->mode = mode;
    poolingDesc->nan = maxpoolingNanOpt;
    poolingDesc->wh = windowHeight; poolingDesc->ww = windowWidth;
    poolingDesc->ph = verticalPadding; poolingDesc->pw = horizontalPadding;
    poolingDesc->sh = verticalStride; poolingDesc->sw = horizontalStride;
    poolingDesc->set = true;
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnDestroyPoolingDescriptor (cudnn_ops).
cudnnStatus_t CUDNNWINAPI cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t poolingDesc) {
  if (poolingDesc == nullptr) return CUDNN_STATUS_SUCCESS;
  if (!remove_live(poolingDesc, Kind::Pool))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyPoolingDescriptor: unknown or already destroyed descriptor");
  delete poolingDesc;
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolutions -----------------------------------------------------------------------------------------

// cudnnFindConvolutionForwardAlgorithmEx (cudnn_cnn): tries the forward algorithms with the
// caller's buffers and reports them in perfResults, fastest first, at most requestedAlgoCount;
// y "will be overwritten with arbitrary values" (here 0xFF bytes). A NULL workSpace is a
// workspace of 0 bytes; an algorithm needing more than workSpaceSizeInBytes is reported after
// the others with status CUDNN_STATUS_ALLOC_FAILED and its memory requirement. BAD_PARAM for
// invalid handle/descriptors, NULL returnedAlgoCount or perfResults, requestedAlgoCount < 1,
// and the conditions of cudnnConvolutionForward.
cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnFilterDescriptor_t wDesc,
    const void* w, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, void* y,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults, void* workSpace,
    size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionForwardAlgorithmEx";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc");
    require_conv_buffers(fn, x, g.x_bytes(), "x", w, g.w_bytes(), "w", y, g.y_bytes(), "y");
    tessera_emu::DeviceAccess access;
    return find_algorithms(Dir::Forward, g, fn, y, g.y_bytes(), requestedAlgoCount, returnedAlgoCount, perfResults,
                           workSpace, workSpaceSizeInBytes, convDesc->math);
  });
}

// cudnnConvolutionForward (cudnn_cnn): y = alpha * conv(x, w) + beta * y (y not read when
// beta == 0). Validation as in conv_geom (BAD_PARAM / NOT_SUPPORTED per its "Returns"
// section), BAD_PARAM for NULL pointers and for a workspace smaller than algo needs.
cudnnStatus_t CUDNNWINAPI cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                                  const cudnnFilterDescriptor_t wDesc, const void* w,
                                                  const cudnnConvolutionDescriptor_t convDesc,
                                                  cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                  size_t workSpaceSizeInBytes, const void* beta,
                                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnConvolutionForward";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc");
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    require_conv_buffers(fn, x, g.x_bytes(), "x", w, g.w_bytes(), "w", y, g.y_bytes(), "y");
    const std::size_t need = algo_workspace(Dir::Forward, raw(algo), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, g, fn);
    tessera_emu::DeviceAccess access;
    use_workspace(workSpace, workSpaceSizeInBytes, need, fn, raw(algo));
    conv_forward_compute(g, x, w, y, scalar(alpha, g.dtype), scalar(beta, g.dtype));
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnFindConvolutionBackwardDataAlgorithmEx (cudnn_cnn): as the forward Find, for
// cudnnConvolutionBackwardData; dx is overwritten with arbitrary values.
cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc");
    require_conv_buffers(fn, w, g.w_bytes(), "w", dy, g.y_bytes(), "dy", dx, g.x_bytes(), "dx");
    tessera_emu::DeviceAccess access;
    return find_algorithms(Dir::BackwardData, g, fn, dx, g.x_bytes(), requestedAlgoCount, returnedAlgoCount,
                           perfResults, workSpace, workSpaceSizeInBytes, convDesc->math);
  });
}

// cudnnConvolutionBackwardData (cudnn_cnn): dx = alpha * conv_transpose(dy, w) + beta * dx,
// the gradient of cudnnConvolutionForward with respect to x (dx not read when beta == 0).
// Validation as cudnnConvolutionForward with dx in the place of x and dy of y.
cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnFilterDescriptor_t wDesc, const void* w,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                       size_t workSpaceSizeInBytes, const void* beta,
                                                       const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnConvolutionBackwardData";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc");
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    require_conv_buffers(fn, w, g.w_bytes(), "w", dy, g.y_bytes(), "dy", dx, g.x_bytes(), "dx");
    const std::size_t need =
        algo_workspace(Dir::BackwardData, raw(algo), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, g, fn);
    tessera_emu::DeviceAccess access;
    use_workspace(workSpace, workSpaceSizeInBytes, need, fn, raw(algo));
    conv_backward_data_compute(g, w, dy, dx, scalar(alpha, g.dtype), scalar(beta, g.dtype));
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnFindConvolutionBackwardFilterAlgorithmEx (cudnn_cnn): as the forward Find, for
// cudnnConvolutionBackwardFilter; dw is overwritten with arbitrary values.
cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* y, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc");
    require_conv_buffers(fn, x, g.x_bytes(), "x", y, g.y_bytes(), "dy", dw, g.w_bytes(), "dw");
    tessera_emu::DeviceAccess access;
    return find_algorithms(Dir::BackwardFilter, g, fn, dw, g.w_bytes(), requestedAlgoCount, returnedAlgoCount,
                           perfResults, workSpace, workSpaceSizeInBytes, convDesc->math);
  });
}

// cudnnConvolutionBackwardFilter (cudnn_cnn): dw = alpha * grad_w(x, dy) + beta * dw, the
// gradient of cudnnConvolutionForward with respect to w (dw not read when beta == 0).
// Validation as cudnnConvolutionForward with dw in the place of w and dy of y.
cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                         const cudnnTensorDescriptor_t xDesc, const void* x,
                                                         const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                         const cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                         size_t workSpaceSizeInBytes, const void* beta,
                                                         const cudnnFilterDescriptor_t dwDesc, void* dw) {
  const char* fn = "cudnnConvolutionBackwardFilter";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const ConvGeom g = conv_geom(fn, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc");
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    require_conv_buffers(fn, x, g.x_bytes(), "x", dy, g.y_bytes(), "dy", dw, g.w_bytes(), "dw");
    const std::size_t need =
        algo_workspace(Dir::BackwardFilter, raw(algo), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, g, fn);
    tessera_emu::DeviceAccess access;
    use_workspace(workSpace, workSpaceSizeInBytes, need, fn, raw(algo));
    conv_backward_filter_compute(g, x, dy, dw, scalar(alpha, g.dtype), scalar(beta, g.dtype));
    return CUDNN_STATUS_SUCCESS;
  });
}

// cudnnConvolutionBackwardBias (cudnn_cnn): db[k] = alpha * sum_{n,h,w} dy[n,k,h,w] + beta * db[k]
// (db not read when beta == 0). BAD_PARAM when dbDesc's n, h or w is not 1, the feature-map
// counts of dy and db differ, or their data types differ.
cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                                       void* db) {
  const char* fn = "cudnnConvolutionBackwardBias";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const cudnnTensorStruct& gy = tensor(dyDesc, fn, "dyDesc");
    const cudnnTensorStruct& b = tensor(dbDesc, fn, "dbDesc");
    if (gy.dtype != b.dtype)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": data types differ: dyDesc " + dtype_name(gy.dtype) +
                                        ", dbDesc " + dtype_name(b.dtype));
    if (b.n != 1 || b.h != 1 || b.w != 1 || b.c != gy.c)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": dbDesc " + dims(b) + " must be [1, " + std::to_string(gy.c) +
                                        ", 1, 1] for dyDesc " + dims(gy));
    require_computable(gy.dtype, fn);
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    const std::size_t e = elem_size(gy.dtype);
    require_device(dy, count(gy) * e, fn, "dy");
    require_device(db, count(b) * e, fn, "db");
    require_disjoint(db, count(b) * e, "db", dy, count(gy) * e, "dy", fn);
    tessera_emu::DeviceAccess access;
    const std::size_t plane = std::size_t(gy.h) * gy.w;
    std::vector<double> acc(std::size_t(gy.c), 0.0), tmp(plane);
    for (int n = 0; n < gy.n; ++n)
      for (int c = 0; c < gy.c; ++c) {
        load(gy.dtype, dy, (std::size_t(n) * gy.c + c) * plane, plane, tmp.data());
        double s = 0.0;
        for (double v : tmp) s += v;
        acc[std::size_t(c)] += s;
      }
    blend(gy.dtype, db, 0, acc.size(), acc.data(), scalar(alpha, gy.dtype), scalar(beta, gy.dtype));
    return CUDNN_STATUS_SUCCESS;
  });
}

// ---- tensor ops -----------------------------------------------------------------------------------------------

// cudnnAddTensor (cudnn_ops): C = alpha * A + beta * C, where "each dimension of the bias
// tensor A must match the corresponding dimension of the destination tensor C or must be
// equal to 1" (A is broadcast along its size-1 dimensions). BAD_PARAM when a dimension of A
// is neither C's nor 1, or the data types differ. C not read when beta == 0.
cudnnStatus_t CUDNNWINAPI cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                                         const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc,
                                         void* C) {
  const char* fn = "cudnnAddTensor";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const cudnnTensorStruct& a = tensor(aDesc, fn, "aDesc");
    const cudnnTensorStruct& c = tensor(cDesc, fn, "cDesc");
    if (a.dtype != c.dtype)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": data types differ: aDesc " + dtype_name(a.dtype) + ", cDesc " +
                                        dtype_name(c.dtype));
    const int ad[4] = {a.n, a.c, a.h, a.w}, cdims[4] = {c.n, c.c, c.h, c.w};
    for (int i = 0; i < 4; ++i)
      if (ad[i] != cdims[i] && ad[i] != 1)
        raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": aDesc " + dims(a) + " does not broadcast to cDesc " + dims(c) +
                                          " (each dimension of A must equal C's or be 1)");
    require_computable(a.dtype, fn);
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    const std::size_t e = elem_size(a.dtype);
    require_device(A, count(a) * e, fn, "A");
    require_device(C, count(c) * e, fn, "C");
    tessera_emu::DeviceAccess access;
    std::vector<double> av(count(a));
    load(a.dtype, A, 0, av.size(), av.data());  // read A fully first: A may alias C
    const double al = scalar(alpha, a.dtype), be = scalar(beta, a.dtype);
    std::vector<double> row(std::size_t(c.w));
    for (int n = 0; n < c.n; ++n)
      for (int ch = 0; ch < c.c; ++ch)
        for (int h = 0; h < c.h; ++h) {
          const std::size_t abase = ((std::size_t(a.n == 1 ? 0 : n) * a.c + (a.c == 1 ? 0 : ch)) * a.h +
                                     (a.h == 1 ? 0 : h)) * a.w;
          for (int w = 0; w < c.w; ++w) row[std::size_t(w)] = av[abase + (a.w == 1 ? 0 : w)];
          blend(c.dtype, C, ((std::size_t(n) * c.c + ch) * c.h + h) * c.w, row.size(), row.data(), al, be);
        }
    return CUDNN_STATUS_SUCCESS;
  });
}

// ---- pooling ---------------------------------------------------------------------------------------------------

// cudnnPoolingForward (cudnn_ops): y = alpha * pool(x) + beta * y (y not read when beta == 0).
// Window (oh, ow) covers rows oh*verticalStride - verticalPadding + [0, windowHeight) and the
// same for columns. MAX: the maximum of the window's elements inside x (padding never wins);
// with CUDNN_PROPAGATE_NAN a NaN in the window gives NaN, otherwise NaNs are ignored.
// AVERAGE_COUNT_INCLUDE_PADDING divides by windowHeight*windowWidth,
// AVERAGE_COUNT_EXCLUDE_PADDING by the number of window elements inside x. BAD_PARAM when the
// n or c dimensions of x and y differ or their data types differ; the emulator also rejects
// (BAD_PARAM) y spatial sizes other than cudnnGetPooling2dForwardOutputDim's
// 1 + (in + 2*padding - window) / stride. NOT_SUPPORTED for data types other than FLOAT/DOUBLE.
cudnnStatus_t CUDNNWINAPI cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                              const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
                                              const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnPoolingForward";
  return guarded(fn, [&] {
    check_handle(handle, fn);
    const cudnnPoolingStruct& pd = pooling(poolingDesc, fn);
    const cudnnTensorStruct& xd = tensor(xDesc, fn, "xDesc");
    const cudnnTensorStruct& yd = tensor(yDesc, fn, "yDesc");
    if (xd.dtype != yd.dtype)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": data types differ: xDesc " + dtype_name(xd.dtype) +
                                        ", yDesc " + dtype_name(yd.dtype));
    if (xd.n != yd.n || xd.c != yd.c)
      raise(CUDNN_STATUS_BAD_PARAM, std::string(fn) + ": n, c of xDesc " + dims(xd) + " and yDesc " + dims(yd) + " differ");
    const int64_t oh = 1 + (int64_t(xd.h) + 2 * pd.ph - pd.wh) / pd.sh;
    const int64_t ow = 1 + (int64_t(xd.w) + 2 * pd.pw - pd.ww) / pd.sw;
    if (int64_t(xd.h) + 2 * pd.ph < pd.wh || int64_t(xd.w) + 2 * pd.pw < pd.ww || yd.h != oh || yd.w != ow) {
      std::ostringstream os;
      os << fn << ": yDesc " << dims(yd) << " does not have the pooling output size " << oh << " x " << ow
         << " (input " << xd.h << " x " << xd.w << ", window " << pd.wh << " x " << pd.ww << ", pad " << pd.ph << ","
         << pd.pw << ", stride " << pd.sh << "," << pd.sw << ")";
      raise(CUDNN_STATUS_BAD_PARAM, os.str());
    }
    require_computable(xd.dtype, fn);
    require_ptr(alpha, fn, "alpha");
    require_ptr(beta, fn, "beta");
    const std::size_t e = elem_size(xd.dtype);
    require_device(x, count(xd) * e, fn, "x");
    require_device(y, count(yd) * e, fn, "y");
    require_disjoint(y, count(yd) * e, "y", x, count(xd) * e, "x", fn);
    tessera_emu::DeviceAccess access;
    const double al = scalar(alpha, xd.dtype), be = scalar(beta, xd.dtype);
    if (xd.dtype == CUDNN_DATA_DOUBLE) pool_forward_compute<double>(pd, xd, yd, x, y, al, be);
    else pool_forward_compute<float>(pd, xd, yd, x, y, al, be);
    return CUDNN_STATUS_SUCCESS;
  });
}

}  // extern "C"

namespace tessera_emu {
std::uint64_t nondeterministic_conv_calls() { return g_nondeterministic_calls.load(); }
}  // namespace tessera_emu
