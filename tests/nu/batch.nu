# Seed 003 batch scenarios against moto (AWS_ENDPOINT_URL), plus bad input and protocol cases.
# Inputs: $env.GF_BUCKET (a bucket name no other test uses). Output: one "ok NAME" / "FAIL NAME" per scenario.
use std/assert
use _lib.nu *

let bucket = $env.GF_BUCKET
let setup = [{service: s3, operation: CreateBucket, params: {Bucket: $bucket}}] | batch-requests
assert equal $setup.0.error null

scenario "parallel-success" {
    let requests = [
        {service: "s3", operation: "ListBuckets", params: {}},
        {service: "ec2", operation: "DescribeInstances", params: {}},
        {service: "lambda", operation: "ListFunctions", params: {}}
    ]
    let results = batch-requests $requests --concurrency 2
    assert equal ($results | length) 3
    assert ($results | all {|r| "result" in $r})
    assert ($results | all {|r| $r.result != null})
    assert equal $results.index [0 1 2]
    assert equal ($results.0.duration | describe) "duration"
    assert equal ($results.0.duration_ms | describe) "float"
    assert equal ($results.0.result.Buckets.0.CreationDate | describe) "datetime"
}

scenario "partial-failure" {
    let requests = [
        {service: "s3", operation: "ListBuckets", params: {}},
        {service: "invalid-service", operation: "BadOp", params: {}},
        {service: "ec2", operation: "DescribeInstances", params: {}}
    ]
    let results = batch-requests $requests --concurrency 2 --fail-fast false
    let successes = $results | where error == null
    assert equal ($successes | length) 2
    let failures = $results | where error != null
    assert equal ($failures | length) 1
    assert ($failures.0.error | str contains "invalid-service")
    assert equal $failures.0.index 1
}

scenario "fail-fast" {
    let requests = [
        {service: "invalid-service", operation: "BadOp", params: {}},
        {service: "s3", operation: "ListBuckets", params: {}},
        {service: "ec2", operation: "DescribeInstances", params: {}}
    ]
    let msg = try {
        batch-requests $requests --concurrency 1 --fail-fast true
        "did not fail"
    } catch {|err|
        assert equal (label-text $err) "batch-requests"
        $err.msg
    }
    assert ($msg | str starts-with "Batch failed")
    assert ($msg | str contains "invalid-service")
}

scenario "service-grouping-order" {
    let mixed = [
        {service: "s3", operation: "ListBuckets", params: {}},
        {service: "s3", operation: "ListObjects", params: {Bucket: $bucket}},
        {service: "ec2", operation: "DescribeInstances", params: {}},
        {service: "ec2", operation: "DescribeImages", params: {Owners: ["self"]}},  # moto lists every AMI otherwise: slow
        {service: "lambda", operation: "ListFunctions", params: {}}
    ]
    let results = batch-requests $mixed --concurrency 3
    assert equal ($results | length) 5
    assert equal $results.index [0 1 2 3 4]
    assert equal $results.request.operation [ListBuckets ListObjects DescribeInstances DescribeImages ListFunctions]
}

scenario "connection-reuse-50" {
    let s3_requests = 0..<50 | each {|i| {
        service: "s3", operation: "ListObjectsV2", params: {Bucket: $bucket, Prefix: $"prefix-($i)"}
    }}
    let results = batch-requests $s3_requests --concurrency 10
    assert equal ($results | length) 50
    assert equal ($results | where error != null | length) 0
    assert equal ($results | get result.Prefix) (0..<50 | each {|i| $"prefix-($i)"})
}

scenario "error-correlation" {
    let failing = {service: "s3", operation: "GetObject", params: {Bucket: "nonexistent-bucket", Key: "nonexistent-key"}}
    let ok = {service: "s3", operation: "ListBuckets", params: {}}
    let results = batch-requests [$failing, $ok] --fail-fast false
    let failure = $results | where error != null | get 0
    assert equal $failure.request.service "s3"
    assert equal $failure.request.operation "GetObject"
    assert ($failure.request.params.Bucket == "nonexistent-bucket")
    assert (($failure.error | str contains "NoSuchBucket") or ($failure.error | str contains "nonexistent"))
    assert equal $failure.error_code "NoSuchBucket"
}

scenario "perf-stats" {
    let requests = [
        {service: "s3", operation: "ListBuckets", params: {}},
        {service: "ec2", operation: "DescribeRegions", params: {}}
    ]
    let results = batch-requests $requests --concurrency 2
    let stats = aws perf stats
    assert (($stats | length) >= 2)
    let s3_stats = $stats | where operation =~ "s3:" | get 0
    assert ($s3_stats.avg_duration < 5sec)
    assert equal ($s3_stats.p99 | describe) "duration"
    aws perf reset
    assert equal (aws perf stats | length) 0
}

scenario "input-stream-250" {
    # a list stream (each ... |) of 250 records: every item acked, or nu stalls after 100
    let results = 1..250 | each {|i| {service: s3, operation: ListBuckets, id: $i}} | batch-requests -c 10
    assert equal ($results | length) 250
    assert equal $results.request.id (1..250 | each {|i| $i })
}

scenario "first-3-streams" {
    aws perf reset
    let first = 0..<500 | each {|i| {service: s3, operation: HeadBucket, params: {Bucket: $bucket}}}
        | batch-requests -c 2 | first 3
    assert equal $first.index [0 1 2]
    # `first 3` dropped the stream: the plugin stopped the batch instead of running all 500
    let ran = aws perf stats | where operation == "s3:HeadBucket" | get count.0
    assert ($ran < 500) $"ran ($ran) of 500"
}

scenario "par-each-concurrent-calls" {
    let ids = 1..6 | par-each {|i| batch-requests [{service: s3, operation: ListBuckets, id: $i}] | get 0.request.id }
    assert equal ($ids | sort) [1 2 3 4 5 6]
}

scenario "bad-input-not-a-list" {
    let err = try { "abc" | batch-requests } catch {|e| $e }
    assert ($err.msg | str contains "expected a list of request records, got string")
    let err = try { {service: s3, operation: ListBuckets} | batch-requests } catch {|e| $e }
    assert ($err.msg | str contains "got record")
    assert ($err.details.help | str contains "wrap it in a list")
    let err = try { 1..3 | batch-requests } catch {|e| $e }
    assert ($err.msg | str contains "got range")
    let err = try { batch-requests } catch {|e| $e }
    assert ($err.msg | str contains "no requests given")
    let err = try { ^echo '[{"service": "s3"}]' | batch-requests } catch {|e| $e }
    assert ($err.msg | str contains "raw bytes or text")
    assert ($err.details.help | str contains "from json")
}

scenario "bad-input-items" {
    let results = batch-requests [{operation: ListBuckets} {service: s3, operation: ListBuckets} 42]
    assert equal ($results | length) 3
    assert ($results.0.error | str contains "service")
    assert equal $results.1.error null
    assert ($results.2.error | str contains "record")
}

scenario "bad-flags" {
    let err = try { batch-requests [{service: s3, operation: ListBuckets}] --concurrency -1 } catch {|e| $e }
    assert ($err.msg | str contains "--concurrency -1")
    assert ((label-text $err) | str contains "-1")
    let err = try { batch-requests [{service: s3, operation: ListBuckets}] -c 0 } catch {|e| $e }
    assert ($err.msg | str contains "1 or more")
    let err = try { adaptive-batch [] --min-concurrency 5 --max-concurrency 2 } catch {|e| $e }
    assert ($err.msg | str contains "--min-concurrency 5")
    assert ((label-text $err) | str contains "5")
    let err = try { adaptive-batch [] --target-latency 0sec } catch {|e| $e }
    assert ($err.msg | str contains "--target-latency")
    # and the plugin still serves afterwards
    assert equal (batch-requests [{service: s3, operation: ListBuckets}] | get 0.error) null
}

scenario "follows-nu-env" {
    # the plugin process outlives this change; the command reads nu's current environment
    $env.AWS_REGION = "eu-west-2"
    let results = batch-requests [
        {service: sts, operation: GetCallerIdentity}
        {service: sts, operation: GetCallerIdentity, region: "us-west-1"}
    ]
    assert equal $results.request.region ["eu-west-2" "us-west-1"]
    assert equal ($results | where error != null | length) 0
}
