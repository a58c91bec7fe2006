// The exception hierarchy. Every error Tessera raises on bad input derives from
// tessera::Error and names the op, the shapes/dtypes/devices involved and what was expected.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tessera {

/// Root of every exception Tessera throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Shapes that do not fit the op (mismatched sizes, wrong rank, bad view).
class ShapeError : public Error { using Error::Error; };
/// A dtype the op does not accept, or a data_ptr<T>/item<T> of the wrong type.
class DTypeError : public Error { using Error::Error; };
/// Tensors on different devices, or a device that is not available.
class DeviceError : public Error { using Error::Error; };
/// A dim or index out of range.
class IndexError : public Error { using Error::Error; };
/// A bad argument value (negative size, zero step, unknown option).
class ValueError : public Error { using Error::Error; };
/// An op that the backend or dtype does not support.
class UnsupportedError : public Error { using Error::Error; };
/// A file that cannot be read, or is corrupt; the message names the file.
class IOError : public Error { using Error::Error; };
/// An allocation the device cannot serve, after Tessera has returned its cached blocks and
/// retried once (torch.OutOfMemoryError). The message has the bytes requested, the device's
/// free and total memory, what Tessera holds allocated and reserved, and a hint. The
/// process keeps working after it is caught: a loop can retry with a smaller batch.
class OutOfMemoryError : public Error { using Error::Error; };
/// A CUDA runtime/driver call failed (message has the call, file:line and CUDA's text).
class CudaError : public Error { using Error::Error; };
/// A cuBLAS call failed.
class CublasError : public CudaError { using CudaError::CudaError; };
/// A cuDNN call failed.
class CudnnError : public CudaError { using CudaError::CudaError; };
/// Autograd misuse: backward on a tensor that does not require grad, etc.
class AutogradError : public Error { using Error::Error; };

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace tessera

/// Throws ErrType with the streamed message when cond is false.
#define TESSERA_CHECK(cond, ErrType, ...)                                   \
  do {                                                                      \
    if (!(cond)) throw ErrType(::tessera::detail::str_cat(__VA_ARGS__));    \
  } while (0)
