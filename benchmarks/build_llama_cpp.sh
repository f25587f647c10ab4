#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (CPU only) for benchmarks/bench_llama_cpp.py.
#
# llama.cpp is a benchmark baseline only, never a dependency of openchat-hf. It is built from the llama.cpp
# copy vendored in the llama-cpp-python source distribution (which also carries convert_hf_to_gguf.py and
# gguf-py, used to turn the Hugging Face weights into a GGUF).
#
# Needs: cmake (>= 3.14), ninja (or make: set GENERATOR="Unix Makefiles"), a C++17 compiler (g++ or clang++),
# tar, and the sdist: pass its path as $1 or LLAMA_CPP_SDIST (pip download --no-deps --no-binary :all:
# llama-cpp-python==0.3.36 fetches it). Rerunnable: does nothing when the binary already exists.
#
# Output (git-ignored): .bench_cache/llama.cpp/src (unpacked llama.cpp, with convert_hf_to_gguf.py and gguf-py),
# .bench_cache/llama.cpp/build/bin/llama-server.
# Takes about an hour at -j 2 on a busy 2-core VM (206 compile steps: ggml, llama, common, mtmd, the server).
# Usage: benchmarks/build_llama_cpp.sh [SDIST.tar.gz]      (JOBS=2 and NICE=19 by default)
#        benchmarks/build_llama_cpp.sh --prebuilt          (no compiler: the prebuilt `xllamacpp` wheel from PyPI,
#        llama.cpp's same server with AVX2/FMA/F16C kernels, into .bench_cache/xllamacpp-venv; only the sdist's
#        convert_hf_to_gguf.py is then used, so the sdist is still unpacked)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LLAMA_CPP_CACHE:-$ROOT/.bench_cache/llama.cpp}"
SDIST="${1:-${LLAMA_CPP_SDIST:-/tmp/dl/llama_cpp_python-0.3.36.tar.gz}}"
JOBS="${JOBS:-2}"
NICE="${NICE:-19}"
GENERATOR="${GENERATOR:-Ninja}"
XLLAMACPP_VERSION="${XLLAMACPP_VERSION:-2026.10.11549}"
BIN="$CACHE/build/bin/llama-server"

PREBUILT=0
if [[ "${1:-}" == "--prebuilt" ]]; then
    PREBUILT=1
    SDIST="${2:-${LLAMA_CPP_SDIST:-/tmp/dl/llama_cpp_python-0.3.36.tar.gz}}"
fi

unpack() {
    if [[ ! -f "$CACHE/src/convert_hf_to_gguf.py" ]]; then
        if [[ ! -f "$SDIST" ]]; then
            echo "error: llama-cpp-python source distribution not found: $SDIST" >&2
            echo "  get it with: pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/dl" >&2
            exit 1
        fi
        echo "unpacking llama.cpp from $SDIST"
        rm -rf "$CACHE/src" "$CACHE/unpack"
        mkdir -p "$CACHE/unpack"
        tar -xzf "$SDIST" -C "$CACHE/unpack" --wildcards '*/vendor/llama.cpp/*'
        mv "$CACHE"/unpack/*/vendor/llama.cpp "$CACHE/src"
        rm -rf "$CACHE/unpack"
    fi
}

if [[ "$PREBUILT" == 1 ]]; then
    mkdir -p "$CACHE"
    unpack
    VENV="$(dirname "$CACHE")/xllamacpp-venv"
    PY="${PYTHON:-python3}"
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --no-deps "xllamacpp==$XLLAMACPP_VERSION"
    "$VENV/bin/python" -c "import xllamacpp as x; print('xllamacpp', x.__version__, x.get_system_info())"
    exit 0
fi

if [[ -x "$BIN" ]]; then
    echo "llama-server already built: $BIN"
    exit 0
fi

for tool in cmake tar; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' is needed to build llama.cpp" >&2; exit 1; }
done
if [[ "$GENERATOR" == "Ninja" ]] && ! command -v ninja >/dev/null; then
    echo "error: 'ninja' is needed (or set GENERATOR=\"Unix Makefiles\")" >&2
    exit 1
fi
if ! command -v "${CXX:-c++}" >/dev/null && ! command -v g++ >/dev/null && ! command -v clang++ >/dev/null; then
    echo "error: a C++17 compiler (g++ or clang++) is needed to build llama.cpp" >&2
    exit 1
fi
mkdir -p "$CACHE"
unpack

nice -n "$NICE" cmake -S "$CACHE/src" -B "$CACHE/build" -G "$GENERATOR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENCL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TOOLS=ON \
    -DBUILD_SHARED_LIBS=OFF
nice -n "$NICE" cmake --build "$CACHE/build" --target llama-server -j "$JOBS"
echo "built: $BIN"
"$BIN" --version 2>&1 | head -n 2 || true
