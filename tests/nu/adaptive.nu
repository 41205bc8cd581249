# Seed 003 adaptive scenarios. Inputs: $env.GF_BUCKET (unique bucket on moto), $env.GF_SLOW_URL (a loopback
# server answering DynamoDB JSON slowly, or "" to skip that scenario).
use std/assert
use _lib.nu *

let bucket = $env.GF_BUCKET
let setup = [{service: s3, operation: CreateBucket, params: {Bucket: $bucket}}] | batch-requests
assert equal $setup.0.error null
let puts = 0..<100 | each {|i| {service: s3, operation: PutObject, params: {Bucket: $bucket, Key: $"fast-key-($i)", Body: "x"}}}
    | batch-requests -c 20
assert equal ($puts | where error != null | length) 0

scenario "adaptive-fast-rises" {
    let fast_requests = 0..<100 | each {|i| {
        service: "s3", operation: "HeadObject", params: {Bucket: $bucket, Key: $"fast-key-($i)"}
    }}
    let results = adaptive-batch $fast_requests --initial-concurrency 5 --target-latency 500ms
    assert equal ($results | length) 100
    assert equal ($results | where error != null | length) 0
    assert equal $results.index (0..<100 | each {|i| $i })
    let peak = $results.concurrency | math max
    assert ($peak > 5) $"concurrency peaked at ($peak)"
}

scenario "adaptive-slow-falls" {
    if ($env.GF_SLOW_URL | is-empty) { print "skip adaptive-slow-falls: no loopback server"; return }
    # more than the seed's 20: the controller needs two full windows (>= 10 samples, >= 2x the no-load
    # latency each) of slow answers before it cuts, and 20 requests at concurrency 20 are one round
    let slow_requests = 0..<150 | each {|i| {
        service: "dynamodb", operation: "ListTables", params: {Limit: ($i + 1)}, endpoint_url: $env.GF_SLOW_URL
    }}
    # --min-concurrency 10 keeps the run short once the limit has come down
    let results = adaptive-batch $slow_requests --initial-concurrency 20 --target-latency 100ms --min-concurrency 10
    assert equal ($results | length) 150
    assert equal ($results | where error != null | length) 0
    let low = $results.concurrency | math min
    assert ($low < 20) $"concurrency never fell below 20, lowest: ($low)"
}
