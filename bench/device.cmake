# Device-path benchmark: a host-side virtio driver -> virtqueue -> VirtioBlk ->
# real storage::Disk, vs qemu-img bench and fio. Run scripts/bench-device.sh.
# The driver is the tests' host-side virtio driver, linked as its library
# (minivmm_virtio_test_harness, tests/devices/virtio/CMakeLists.txt).
add_executable(device_bench ${CMAKE_CURRENT_LIST_DIR}/device_bench.cpp)
target_link_libraries(device_bench PRIVATE minivmm_bench_peers minivmm_virtio_blk
  minivmm_virtio_test_harness minivmm_storage minivmm_spdlog)
