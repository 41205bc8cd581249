# The same entry points as scripts/, for people who use just.
demo *ARGS:
    scripts/demo {{ARGS}}

test *ARGS:
    scripts/test {{ARGS}}

bench *ARGS:
    scripts/bench {{ARGS}}
