#!/bin/sh
# build.sh KERNELDIR OUT
S=/root/.cache/bge-m3-server/native/src/80fb11ac73e6-5bf01d9f829e
B=/root/.cache/bge-m3-server/native/build/cpu-native-f27598a82088ae9f/llama.cpp/ggml/src
g++ -O3 -march=native -std=c++17 -DNDEBUG -DGGML_USE_CPU -I$S/ggml/include -I$S/ggml/src -I$S/ggml/src/ggml-cpu -I$1 bench.cpp $B/libggml-cpu.a $B/libggml-base.a -lpthread -lm -fopenmp -o $2
