# Sourced by the benches/run-*.sh drivers: the cargo profile kafkit's bench binaries are built
# with. `KAFKIT_BENCH_PROFILE=dev` (CI's smoke run of each driver) builds them unoptimized on
# top of the test build's dependencies: it checks that a driver runs and its results parse,
# and its figures mean nothing. The peers in benches/peers are always built in release.
BENCH_PROFILE="${KAFKIT_BENCH_PROFILE:-release}"
case "$BENCH_PROFILE" in
  release) BENCH_TARGET=release ;;
  dev) BENCH_TARGET=debug ;;
  *) printf 'KAFKIT_BENCH_PROFILE must be release or dev, not %s\n' "$BENCH_PROFILE" >&2; exit 1 ;;
esac
