// Per-environment (main thread / worker thread) data of the addon.
#pragma once

#include <napi.h>

namespace bge {

struct AddonState {
    Napi::FunctionReference modelConstructor;
    Napi::ObjectReference constructToken;  // private object only the addon can pass to the constructor
};

}  // namespace bge
