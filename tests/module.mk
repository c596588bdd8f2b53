# tests: Check unit tests, guest payloads, integration tests
include tests/guests/module.mk
include tests/unit/module.mk
include tests/tools/module.mk
include tests/fuzz/module.mk
include tests/integration/module.mk
