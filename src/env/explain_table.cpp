// THE table of error messages tessera-env --explain knows: pattern, meaning, the checks that
// explain it, the usual fix, and the public report each came from. One entry per message
// family; tests/test_env_machine.cpp holds, for every id, a state in which its check fires.
#include "tessera/env/explain.hpp"

namespace tessera::env {

const std::vector<ExplainEntry>& explain_table() {
  static const std::vector<ExplainEntry> table = {
      {"insufficient-driver",
       {"driver version is insufficient for CUDA runtime", "cudaErrorInsufficientDriver", "CUDA_ERROR_INSUFFICIENT_DRIVER"},
       "CUDA error: CUDA driver version is insufficient for CUDA runtime version",
       "The CUDA runtime the program loaded is newer than the NVIDIA driver supports (error 35): a different "
       "major, or a newer minor before CUDA 11.",
       {"driver_vs_runtime", "python.*.driver", "runtime"},
       "install a driver that supports the runtime's CUDA version (nvidia-smi shows what the driver supports), or use "
       "a build for the driver's CUDA",
       "https://github.com/NVIDIA/nvidia-docker/issues/498"},
      {"no-kernel-image",
       {"no kernel image is available for execution", "cudaErrorNoKernelImageForDevice", "CUDA_ERROR_NO_BINARY_FOR_GPU"},
       "CUDA error: no kernel image is available for execution on the device",
       "The binary has no SASS for this GPU's compute capability and no PTX the driver can compile for it (error 209).",
       {"gpu.*", "ptx"},
       "rebuild for the GPU's architecture (-DCMAKE_CUDA_ARCHITECTURES=<cc>, e.g. 86 for cc 8.6), or install a build "
       "that lists it",
       "https://github.com/shouxieai/tensorRT_Pro/issues/162"},
      {"unsupported-ptx",
       {"PTX was compiled with an unsupported toolchain", "cudaErrorUnsupportedPtxVersion", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        "CUDA error 222"},
       "CUDA error 222 at ggml-cuda.cu:9635: the provided PTX was compiled with an unsupported toolchain.",
       "The driver was asked to JIT-compile PTX of a newer ISA than it knows: the nvcc that wrote it is newer than "
       "the driver.",
       {"ptx", "gpu.*", "driver_vs_runtime", "python.*.driver"},
       "update the driver to one supporting the toolkit that built the program, or rebuild with SASS for the GPU or "
       "with a toolkit no newer than the driver",
       "https://github.com/mit-han-lab/inter-operator-scheduler/issues/4"},
      {"cudnn-not-initialized", {"CUDNN_STATUS_NOT_INITIALIZED"},
       "RuntimeError: cuDNN error: CUDNN_STATUS_NOT_INITIALIZED",
       "cudnnCreate failed: most often the GPU had no memory left for cuDNN's workspace, otherwise the cuDNN "
       "loaded does not fit the CUDA runtime or the one the program was built with.",
       {"nvml.*.memory", "cudnn", "cudnn_vs_runtime", "python.*.cudnn", "shadow.libcudnn*", "python.*.shadow.libcudnn*"},
       "free GPU memory (other processes, a smaller batch); make the cuDNN on the loader path the one the program "
       "was built with",
       "https://github.com/haotian-liu/LLaVA/issues/392"},
      {"cudnn8-sublibrary-missing",
       {"libcudnn_*_infer.so.8: cannot open shared object file", "libcudnn_*_train.so.8: cannot open shared object file"},
       "Could not load library libcudnn_ops_infer.so.8. Error: libcudnn_ops_infer.so.8: cannot open shared object "
       "file: No such file or directory",
       "The program was built with cuDNN 8, whose sub-libraries (libcudnn_ops_infer.so.8, ...) are not on the loader "
       "path: only cuDNN 9 is installed, or cuDNN 8 lives in a Python wheel the process does not search.",
       {"cudnn", "python.*.cudnn", "python.*.wheels", "shadow.libcudnn*", "python.*.shadow.libcudnn*"},
       "install cuDNN 8 for the program's CUDA (libcudnn8, or pip nvidia-cudnn-cu11/-cu12 8.x) and put its lib folder "
       "on LD_LIBRARY_PATH, or use a build of the program for cuDNN 9",
       "https://github.com/SYSTRAN/faster-whisper/issues/516"},
      {"cudnn-could-not-load", {"Could not load library libcudnn*.so", "Unable to load any of {libcudnn"},
       "Error: Could not load library libcudnn_cnn_infer.so.8",
       "cuDNN's own loader could not open one of its libraries: a missing cuDNN of that major, or a dependency of "
       "it (libcuda, libcublas) missing.",
       {"cudnn", "python.*.cudnn", "python.*.wheels", "driver", "shadow.libcudnn*", "python.*.shadow.libcudnn*"},
       "install the cuDNN major the program needs and check that libcuda.so.1 and libcublas are loadable",
       "https://github.com/AILab-CVC/Make-Your-Video/issues/4"},
      {"cudnn-symbol-version", {"version ?libcudnn*.so.[0-9]? not found", "version libcudnn*.so.[0-9] not defined"},
       "symbol _Z22cudnnGenericOpTensorNd..., version libcudnn_ops_infer.so.8 not defined in file "
       "libcudnn_ops_infer.so.8 with link time reference",
       "Two copies of cuDNN are mixed in one process: a library from one copy found its sibling from another "
       "(a different minor), whose symbol versions differ.",
       {"shadow.libcudnn*", "python.*.shadow.libcudnn*", "python.*.cudnn", "cudnn"},
       "keep one cuDNN on the loader path: remove the other copy's folder from LD_LIBRARY_PATH (ldconfig -p | grep "
       "cudnn lists the cached ones)",
       "https://github.com/davisking/dlib/issues/2719"},
      {"cublas-not-initialized", {"CUBLAS_STATUS_NOT_INITIALIZED"},
       "RuntimeError: CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`",
       "cublasCreate failed: usually no GPU memory was left for cuBLAS's workspace, otherwise the cuBLAS loaded does "
       "not fit the CUDA runtime.",
       {"nvml.*.memory", "cublas", "cublas_vs_runtime", "shadow.libcublas*", "python.*.shadow.libcublas*",
        "python.*.wheels"},
       "free GPU memory (other processes, a smaller batch or model); load the cuBLAS of the runtime's CUDA major",
       "https://github.com/OpenBMB/VisCPM/issues/3"},
      {"out-of-memory", {"out of memory", "CUDA_ERROR_OUT_OF_MEMORY", "cudaErrorMemoryAllocation"},
       "RuntimeError: CUDA out of memory. Tried to allocate 752.00 MiB (GPU 0; 14.76 GiB total capacity; 9.84 GiB "
       "already allocated; 53.94 MiB free)",
       "The allocation did not fit in the GPU memory left: the program needs more, or other processes (or a small MIG "
       "instance) hold part of it.",
       {"nvml.*.memory", "nvml.*.mig"},
       "see who holds memory (nvidia-smi), stop them or pick a free GPU; otherwise a smaller batch",
       "https://github.com/facebookresearch/denoiser/issues/135"},
      {"devices-unavailable",
       {"all CUDA-capable devices are busy or unavailable", "cudaErrorDevicesUnavailable", "CUDA_ERROR_DEVICE_UNAVAILABLE"},
       "Check failed: error == cudaSuccess (46 vs. 0)  all CUDA-capable devices are busy or unavailable",
       "No context could be created: the GPU is in Exclusive_Process mode and another process holds it, or in "
       "Prohibited mode (error 46).",
       {"nvml.*.compute_mode", "nvml.*.mig"},
       "use another GPU (CUDA_VISIBLE_DEVICES) or set the compute mode to Default (sudo nvidia-smi -c DEFAULT)",
       "https://github.com/NVIDIA/DIGITS/issues/2005"},
      {"nvml-version-mismatch", {"Driver/library version mismatch", "NVML_ERROR_LIB_RM_VERSION_MISMATCH"},
       "Failed to initialize NVML: Driver/library version mismatch",
       "The driver's user-space libraries were updated (often by unattended upgrades) while the old kernel module "
       "is still loaded.",
       {"nvml", "driver"},
       "reboot, or unload and reload the nvidia kernel modules",
       "https://github.com/lyulyul/shine-cluster/issues/30"},
      {"ecc-uncorrectable", {"uncorrectable ECC error", "CUDA_ERROR_ECC_UNCORRECTABLE", "cudaErrorECCUncorrectable"},
       "RuntimeError: CUDA error: uncorrectable ECC error encountered",
       "The GPU's memory had an error ECC could not correct (error 214): a hardware fault, or pages waiting to be "
       "retired until the next reset.",
       {"nvml.*.ecc"},
       "reset the GPU or reboot; if it recurs, the board needs service",
       "https://github.com/vllm-project/vllm/issues/5222"},
      {"no-driver-or-device",
       {"Found no NVIDIA driver", "no CUDA-capable device is detected", "cudaErrorNoDevice", "CUDA_ERROR_NO_DEVICE",
        "libcuda.so: cannot open shared object file", "libcuda.so.1: cannot open shared object file"},
       "RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed "
       "a driver from http://www.nvidia.com/Download/index.aspx",
       "The process found no NVIDIA driver (libcuda.so.1) or no visible GPU: no driver, a container started without "
       "GPUs, CUDA_VISIBLE_DEVICES hiding them, or MIG on without instances.",
       {"driver", "devices", "nvml", "nvml.*.mig"},
       "install the driver; in a container pass --gpus all; check CUDA_VISIBLE_DEVICES",
       "https://github.com/tbepler/topaz/issues/154"},
      {"cudart-missing", {"libcudart.so: cannot open shared object file", "libcudart.so.[0-9]*: cannot open shared object file"},
       "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
       "No CUDA runtime of the major the program was built for is on the loader path: often packages built for "
       "another CUDA major than the installed runtime wheels.",
       {"runtime", "python.*.wheels", "python.*.shadow.libcudart*", "shadow.libcudart*"},
       "install the runtime of that major (nvidia-cuda-runtime-cu12, or the toolkit) or packages built for the CUDA "
       "you have",
       "https://github.com/NVIDIA/cuml/issues/5300"},
      {"tessera-cuda-unavailable", {"device cuda is not available", "device cuda:[0-9]* is not available"},
       "DeviceError: device cuda is not available: no NVIDIA driver (libcuda.so.1: cannot open shared object file)",
       "Tessera's CUDA backend refused to start; the text after the colon is the first failing check, the same "
       "tessera-env shows.",
       {"build.cuda", "env.TESSERA_DISABLE_CUDA", "driver", "devices", "driver_vs_runtime", "runtime", "cublas",
        "cublas_vs_runtime", "cudnn", "cudnn_vs_runtime", "gpu.*", "ptx", "nvml.*.compute_mode"},
       "run tessera-env --require-cuda and follow the FAIL line's fix",
       "Tessera's own message (src/registry.cpp, DeviceError), with its reason from cuda_unavailable_reason"},
  };
  return table;
}

}  // namespace tessera::env
