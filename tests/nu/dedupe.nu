# Seed 003 dedupe scenarios, closures that call the plugin back, closure errors.
# Inputs: $env.GF_TMP (a fresh directory for side-effect files), $env.GF_KEY (a unique key prefix).
use std/assert
use _lib.nu *

let tmp = $env.GF_TMP
let key = $env.GF_KEY

scenario "dedupe-concurrent" {
    # a closure cannot mutate a captured `mut`: count executions by appending to a file
    let counter = $"($tmp)/concurrent.txt"
    let slow_operation = {||
        "run\n" | save --append $counter
        sleep 200ms
        "expensive-result"
    }
    let results = 1..4 | par-each {|i| dedupe-request $"($key)-test-dedup-key" $slow_operation }
    assert equal $results ["expensive-result" "expensive-result" "expensive-result" "expensive-result"]
    assert equal (count-lines $counter) 1
}

scenario "dedupe-window-expiry" {
    let counter = $"($tmp)/window.txt"
    let operation = {|| "run\n" | save --append $counter; "fresh-data" }
    let result1 = dedupe-request $"($key)-time-window-test" $operation --window 100ms
    sleep 150ms
    let result2 = dedupe-request $"($key)-time-window-test" $operation --window 100ms
    assert equal $result1 "fresh-data"
    assert equal $result2 "fresh-data"
    assert equal (count-lines $counter) 2
}

scenario "dedupe-sequential-reuse" {
    let counter = $"($tmp)/reuse.txt"
    let operation = {|| "run\n" | save --append $counter; {n: 1, at: (date now)} }
    let a = dedupe-request $"($key)-reuse" $operation --window 1hr
    let b = dedupe-request $"($key)-reuse" $operation --window 1hr
    assert equal $a $b
    assert equal (count-lines $counter) 1
}

scenario "closure-calls-plugin-back" {
    let counts = [1 2] | each {|i|
        dedupe-request $"($key)-nest-($i)" {|| batch-requests [{service: s3, operation: ListBuckets}] | length }
    }
    assert equal $counts [1 1]
    # two levels deep, concurrently
    let deep = 1..4 | par-each {|i|
        dedupe-request $"($key)-outer-($i)" {|| dedupe-request $"($key)-inner" {|| aws perf stats | length } }
    }
    assert equal ($deep | length) 4
}

scenario "closure-error" {
    let msg = try { dedupe-request $"($key)-boom" {|| error make {msg: "boom from closure"} } } catch {|e| $e.msg }
    assert equal $msg "boom from closure"
    # errors are not cached: the next call runs its closure
    assert equal (dedupe-request $"($key)-boom" {|| "recovered" }) "recovered"
}

scenario "dedupe-bad-window" {
    let err = try { dedupe-request $"($key)-w" {|| 1 } --window -1sec } catch {|e| $e }
    assert ($err.msg | str contains "--window")
    assert ((label-text $err) | str contains "-1sec")
}
