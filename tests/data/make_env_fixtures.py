#!/usr/bin/env python3
# Regenerates tests/data/env (run from the repository root: python3 tests/data/make_env_fixtures.py tests/data/env).
# Writes tests/data/env: fake Python environments (dist-info METADATA + RECORD, torch/version.py).
import os, sys
root = sys.argv[1]
def w(path, text):
    p = os.path.join(root, path); os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, 'w').write(text)
def dist(site, name, version, requires=(), files=()):
    folder = f"{name.replace('-', '_')}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires) + "\nA fixture of tests/test_env_machine.cpp.\n"
    w(f"{site}/{folder}/METADATA", meta)
    rec = [f"{folder}/METADATA,sha256=fixture,{len(meta)}", f"{folder}/RECORD,,"] + [f"{f},sha256=fixture,1" for f in files]
    w(f"{site}/{folder}/RECORD", "\n".join(rec) + "\n")
def torch(site, version, cuda, requires, files=("torch/lib/libtorch_cuda.so",)):
    dist(site, "torch", version, requires, ("torch/__init__.py", "torch/version.py") + tuple(files))
    w(f"{site}/torch/version.py", "from typing import Optional\n\n__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']\n"
      f"__version__ = '{version}'\ndebug = False\ncuda: Optional[str] = {repr(cuda) if cuda else 'None'}\ngit_version = 'fixture'\nhip: Optional[str] = None\nxpu: Optional[str] = None\n")
    w(f"{site}/torch/__init__.py", "")
M = 'platform_system == "Linux" and platform_machine == "x86_64"'
cu12 = [f"nvidia-cuda-runtime-cu12==12.4.127; {M}", f"nvidia-cublas-cu12==12.4.5.8; {M}", f"nvidia-cudnn-cu12==9.1.0.70; {M}", f"nvidia-nccl-cu12==2.21.5; {M}"]
def cu12_wheels(site, cudnn=True):
    dist(site, "nvidia-cuda-runtime-cu12", "12.4.127", (), ["nvidia/cuda_runtime/lib/libcudart.so.12"])
    dist(site, "nvidia-cublas-cu12", "12.4.5.8", (), ["nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/lib/libcublasLt.so.12"])
    if cudnn: dist(site, "nvidia-cudnn-cu12", "9.1.0.70", ["nvidia-cublas-cu12"], ["nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cudnn/lib/libcudnn_ops.so.9"])
    dist(site, "nvidia-nccl-cu12", "2.21.5", (), ["nvidia/nccl/lib/libnccl.so.2"])

# conda installation: base (no GPU packages) and three envs
w("miniconda3/conda-meta/history", "# fixture\n")
dist("miniconda3/lib/python3.12/site-packages", "numpy", "2.1.3")
w("miniconda3/envs/torch-cu12/conda-meta/history", "# fixture\n")
s = "miniconda3/envs/torch-cu12/lib/python3.11/site-packages"
torch(s, "2.5.1+cu124", "12.4", cu12); cu12_wheels(s); dist(s, "numpy", "1.26.4")
# torch built for CUDA 12 beside a CUDA 13 cuDNN wheel (and not the cuDNN it pins)
w("miniconda3/envs/mixed/conda-meta/history", "# fixture\n")
s = "miniconda3/envs/mixed/lib/python3.11/site-packages"
torch(s, "2.5.1+cu124", "12.4", cu12); cu12_wheels(s, cudnn=False)
dist(s, "nvidia-cudnn-cu13", "9.13.0.50", (), ["nvidia/cudnn/lib/libcudnn.so.9"])
# two cuDNN majors: cuDNN 9 for torch and a cuDNN 8 wheel for CUDA 11 left by another install
w("miniconda3/envs/two-cudnn/conda-meta/history", "# fixture\n")
s = "miniconda3/envs/two-cudnn/lib/python3.11/site-packages"
torch(s, "2.5.1+cu124", "12.4", cu12); cu12_wheels(s)
dist(s, "nvidia-cudnn-cu11", "8.9.6.50", (), ["nvidia/cudnn/lib/libcudnn.so.8", "nvidia/cudnn/lib/libcudnn_ops_infer.so.8"])
# a venv with the CUDA 13 layout: unsuffixed toolkit wheels sharing nvidia/cu13/lib
w("venv-cu13/pyvenv.cfg", "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.3\n")
s = "venv-cu13/lib/python3.12/site-packages"
cu13 = [f"nvidia-cuda-runtime==13.0.96; {M}", f"nvidia-cublas==13.1.0.3; {M}", f"nvidia-cudnn-cu13==9.13.0.50; {M}", f"nvidia-nccl-cu13==2.27.7; {M}"]
torch(s, "2.9.0+cu130", "13.0", cu13)
dist(s, "nvidia-cuda-runtime", "13.0.96", (), ["nvidia/cu13/lib/libcudart.so.13"])
dist(s, "nvidia-cublas", "13.1.0.3", (), ["nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13"])
dist(s, "nvidia-cudnn-cu13", "9.13.0.50", ["nvidia-cublas"], ["nvidia/cudnn/lib/libcudnn.so.9"])
dist(s, "nvidia-nccl-cu13", "2.27.7", (), ["nvidia/nccl/lib/libnccl.so.2"])
# a conda env outside any installation, registered in ~/.conda/environments.txt
w("elsewhere/cupy-env/conda-meta/history", "# fixture\n")
s = "elsewhere/cupy-env/lib/python3.11/site-packages"
dist(s, "cupy-cuda12x", "13.3.0", (f"fastrlock>=0.5",)); dist(s, "jax-cuda12-plugin", "0.4.35", (f"nvidia-cudnn-cu12>=9.1,<10.0; extra == \"with-cuda\"",))
# system site-packages without GPU packages
dist("system/dist-packages", "six", "1.16.0")
