"""The test harness shared by minivmm's Python tests and scripts.

Imported as `framework` with tests/ on PYTHONPATH: CMake's add_python_test
and add_vm_test set it for every test, and the scripts that run Python
export it. Modules: cache_modes (the five modes and their traits), vmm_log
(minivmm's `disk N stats:` and `ring disk=` lines), vmm_process (a live
minivmm and its log), vm_stall (what a timed-out wait does with a minivmm
still running), images, tiny_guest, pty_console, agent_log and records (the
guest agent's output and on-disk records), mode_contract (the cache-mode
contract on the stats lines), and the crash campaigns' pieces (campaign,
kill_vm, kill_check, powercut_check, powercut_totals, powerloss_check).
"""
