-- wrk prints p50/75/90/99 with --latency; the benchmark also wants p95, so it reads this line.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %.0f, "duration_us": %.0f, "p50_us": %.0f, "p95_us": %.0f, "p99_us": %.0f, '
      .. '"max_us": %.0f, "mean_us": %.1f, "connect_errors": %.0f, "read_errors": %.0f, "write_errors": %.0f, '
      .. '"status_errors": %.0f, "timeouts": %.0f}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
