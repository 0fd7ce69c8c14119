# Storage benchmark: minivmm's Disk in all five cache modes vs qemu-img bench
# (same file, same offsets) with fio as the raw ceiling. Run scripts/bench-storage.sh.
add_executable(storage_bench ${CMAKE_CURRENT_LIST_DIR}/storage_bench.cpp)
target_link_libraries(storage_bench PRIVATE minivmm_storage spdlog::spdlog)
