# Storage benchmark: minivmm's Disk in all five cache modes vs qemu-img bench
# (same file, same offsets) with fio as the raw ceiling. Run scripts/bench-storage.sh.
# bench_peers (file, qemu-img and fio peers, table) is shared with device.cmake.
add_library(minivmm_bench_peers STATIC ${CMAKE_CURRENT_LIST_DIR}/bench_peers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bench_options.cpp)
target_link_libraries(minivmm_bench_peers PUBLIC minivmm_storage PRIVATE minivmm_spdlog)

add_executable(storage_bench ${CMAKE_CURRENT_LIST_DIR}/storage_bench.cpp)
target_link_libraries(storage_bench PRIVATE minivmm_bench_peers minivmm_storage minivmm_spdlog)
