# Cross-compiling the addon for linux/arm64 (aarch64) on another Linux host, with Debian's
# g++-aarch64-linux-gnu (`apt-get install g++-aarch64-linux-gnu`). scripts/build-native.ts passes this
# file when NATIVE_TARGET_ARCH=arm64 on a non-arm64 host; a plain CMake run can pass it too
# (-DCMAKE_TOOLCHAIN_FILE=native/toolchains/aarch64-linux-gnu.cmake). Another toolchain: set
# BGE_M3_CROSS_PREFIX (default "aarch64-linux-gnu-") in the environment of the configure step.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if (DEFINED ENV{BGE_M3_CROSS_PREFIX})
    set(_bge_cross_prefix "$ENV{BGE_M3_CROSS_PREFIX}")
else()
    set(_bge_cross_prefix "aarch64-linux-gnu-")
endif()
set(CMAKE_C_COMPILER   "${_bge_cross_prefix}gcc")
set(CMAKE_CXX_COMPILER "${_bge_cross_prefix}g++")

# Debian's multiarch cross sysroot; headers and libraries of the target only; programs (git, the host's tools) from the host
set(CMAKE_FIND_ROOT_PATH "/usr/aarch64-linux-gnu")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
