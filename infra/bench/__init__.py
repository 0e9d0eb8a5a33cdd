"""The Portlog benchmark: Portlog and CNCF Distribution (`docker-registry`) under the same
workloads, in one run, alternating, next to the machine's own limits (docs/performance.md).

Run it with `make bench`, `scripts/bench` or `.venv/bin/python -m infra.bench --help`.

Modules, one concern each:
  cli        argument parsing and the order of a run
  machine    what the run was measured on, and which Portlog
  limits     the machine's ceilings: sha256, loopback TCP, disk write and read
  servers    start and stop both registries on free loopback ports; peak RSS
  client     a minimal keep-alive HTTP/1.1 connection (the load generator's wire)
  auth       Docker token authentication, as registry clients do it
  protocol   registry operations over a connection: upload, mount, manifest, pull, list
  load       the load generator: lanes spread over several client processes
  wrk        runs `wrk` on one URL and reads its figures
  cpu        where the CPU went during a run: server, clients, kernel, other processes
  workloads  what is measured, at which sizes and concurrency
  scanning   the scan time of a ~150-package image, push throughput with auto_scan off and on
  soak       --soak MINUTES: mixed load with a ledger, then a consistency check
  report     readings and the printed tables
  profile    optional py-spy recording of Portlog, and its summary
"""
