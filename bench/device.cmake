# Device-path benchmark: a host-side virtio driver -> virtqueue -> VirtioBlk ->
# real storage::Disk, vs qemu-img bench and fio. Run scripts/bench-device.sh.
# The driver is the test harness, compiled in (the test code stays in tests/).
add_executable(device_bench
  ${CMAKE_CURRENT_LIST_DIR}/device_bench.cpp
  ${CMAKE_SOURCE_DIR}/tests/devices/virtio/virtio_driver_harness.cpp)
target_link_libraries(device_bench PRIVATE minivmm_bench_peers minivmm_virtio_blk
  minivmm_storage spdlog::spdlog)
