# Seed 003 memory scenario: 1000 ListObjectsV2 at concurrency 20, with the plugin's peak RSS reported.
# Inputs: $env.GF_BUCKET, $env.GF_MAX_RSS_MB (the bound asserted on the plugin's VmHWM).
use std/assert
use _lib.nu *

let bucket = $env.GF_BUCKET
let setup = [{service: s3, operation: CreateBucket, params: {Bucket: $bucket}}] | batch-requests
assert equal $setup.0.error null

scenario "memory-1000" {
    let large_requests = 0..<1000 | each {|i| {
        service: "s3", operation: "ListObjectsV2", params: {Bucket: $bucket, Prefix: $"large-prefix-($i)"}
    }}
    let results = batch-requests $large_requests --concurrency 20
    assert equal ($results | length) 1000
    assert equal ($results | where error != null | length) 0
    let pid = plugin list | where name == greenfetch | get pid.0
    let hwm_kb = open --raw $"/proc/($pid)/status" | lines | where $it starts-with "VmHWM" | first
        | parse --regex 'VmHWM:\s+(?<kb>\d+) kB' | get kb.0 | into int
    print $"metric plugin_vmhwm_kb ($hwm_kb)"
    let limit_kb = ($env.GF_MAX_RSS_MB | into int) * 1024
    assert ($hwm_kb < $limit_kb) $"plugin peak RSS ($hwm_kb) kB is over ($limit_kb) kB"
}
