// Built-in seed inputs of a fuzz target: replayed by its CTest test in
// normal builds and written out as the starting corpus of a libFuzzer run
// (fuzz_replay_main.cpp --write-seeds DIR), so every run starts from inputs
// that reach deep into the target instead of from nothing.
#pragma once

#include <cstdint>
#include <vector>

std::vector<std::vector<uint8_t>> builtin_seeds();
