# Shared by the scenario scripts: run one scenario, report "ok NAME" or "FAIL NAME: why" on stdout
# (pytest reads these lines), and keep going so one failure does not hide the others.
use std/assert

export def scenario [name: string, body: closure] {
    let started = date now
    try {
        do $body
        print $"ok ($name)"
        print -e $"time ($name) ((date now) - $started)"
    } catch {|err|
        print $"FAIL ($name): ($err.msg)"
        print -e $err.rendered
    }
}

# How many lines a side-effect file has (0 when it does not exist yet).
export def count-lines [path: string] {
    if ($path | path exists) { open --raw $path | lines | length } else { 0 }
}

# The source text an error label points at (to check that a label sits on the right flag or value).
export def label-text [err: record] {
    let span = $err.details.labels.0.span
    view span $span.start $span.end
}
