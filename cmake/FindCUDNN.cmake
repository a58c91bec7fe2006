# FindCUDNN
# ---------
# Finds cuDNN (8 or 9). Searches, in order:
#   1. CUDNN_ROOT (CMake variable or environment variable)
#   2. the CUDA toolkit's own folders (CUDAToolkit_ROOT / CUDA_PATH / /usr/local/cuda)
#   3. the folder of the `nvidia-cudnn` Python package (site-packages/nvidia/cudnn)
#   4. the system's default paths
# Result variables: CUDNN_FOUND, CUDNN_VERSION, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY,
# CUDNN_SEARCH_REPORT (every path searched, for error messages).
# Imported target: CUDNN::cudnn

set(_cudnn_hints "")
if(DEFINED CUDNN_ROOT)
  list(APPEND _cudnn_hints "${CUDNN_ROOT}")
endif()
if(DEFINED ENV{CUDNN_ROOT})
  list(APPEND _cudnn_hints "$ENV{CUDNN_ROOT}")
endif()
if(DEFINED CUDAToolkit_LIBRARY_ROOT)
  list(APPEND _cudnn_hints "${CUDAToolkit_LIBRARY_ROOT}")
endif()
if(DEFINED CUDAToolkit_ROOT)
  list(APPEND _cudnn_hints "${CUDAToolkit_ROOT}")
endif()
if(DEFINED ENV{CUDA_PATH})
  list(APPEND _cudnn_hints "$ENV{CUDA_PATH}")
endif()
list(APPEND _cudnn_hints /usr/local/cuda)
find_package(Python3 QUIET COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__) if nvidia.cudnn.__file__ else list(nvidia.cudnn.__path__)[0])"
    OUTPUT_VARIABLE _cudnn_py OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _cudnn_py_rc)
  if(_cudnn_py_rc EQUAL 0 AND _cudnn_py)
    list(APPEND _cudnn_hints "${_cudnn_py}")
  endif()
endif()

find_path(CUDNN_INCLUDE_DIR cudnn_version.h HINTS ${_cudnn_hints} PATH_SUFFIXES include targets/x86_64-linux/include)
find_library(CUDNN_LIBRARY cudnn HINTS ${_cudnn_hints} PATH_SUFFIXES lib64 lib lib/x64 targets/x86_64-linux/lib)

# No ';' in the report: find_package_handle_standard_args would split it into unknown keywords.
string(REPLACE ";" ", " _cudnn_hints_text "${_cudnn_hints}")
set(CUDNN_SEARCH_REPORT "searched for cudnn_version.h and libcudnn under: ${_cudnn_hints_text} and the system paths (set CUDNN_ROOT to the cuDNN install folder)")

if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  file(READ "${CUDNN_INCLUDE_DIR}/cudnn_version.h" _cudnn_h)
  string(REGEX MATCH "#define CUDNN_MAJOR ([0-9]+)" _ "${_cudnn_h}")
  set(_maj "${CMAKE_MATCH_1}")
  string(REGEX MATCH "#define CUDNN_MINOR ([0-9]+)" _ "${_cudnn_h}")
  set(_min "${CMAKE_MATCH_1}")
  string(REGEX MATCH "#define CUDNN_PATCHLEVEL ([0-9]+)" _ "${_cudnn_h}")
  set(_pat "${CMAKE_MATCH_1}")
  set(CUDNN_VERSION "${_maj}.${_min}.${_pat}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN
  REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR
  VERSION_VAR CUDNN_VERSION
  REASON_FAILURE_MESSAGE "${CUDNN_SEARCH_REPORT}")

if(CUDNN_FOUND AND NOT TARGET CUDNN::cudnn)
  add_library(CUDNN::cudnn UNKNOWN IMPORTED)
  set_target_properties(CUDNN::cudnn PROPERTIES
    IMPORTED_LOCATION "${CUDNN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)
