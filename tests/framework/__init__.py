"""The test harness shared by minivmm's Python tests and scripts.

Imported as `framework` with tests/ on PYTHONPATH: CMake's add_python_test
and add_vm_test set it for every test, and the scripts that run Python
export it. Modules: cache_modes (the five modes and their traits), vmm_log
(minivmm's `disk N stats:` and `ring disk=` lines), vm_stall (what a timed-out
wait does with a minivmm still running), images, tiny_guest, pty_console,
agent_log and records (the guest agent's output and on-disk records), and
the crash checkers (kill_check, powercut_check, powerloss_check, campaign).
"""
