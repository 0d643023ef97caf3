"""What the fake handlers (tests/local/fake_handlers.py, fake_slow_handlers.py) wait for and
record, kept apart from them: a timeout drops a handler's module from sys.modules and the next
invocation imports a new copy, and every copy must share these with the tests."""

import threading

# Set by a test to let a handler blocked in `wait()` (a C call) or napping go on.
RELEASE = threading.Event()
# What the slow handlers got as far as, in order.
REACHED: list[str] = []
# The messages `fake_handlers.receive` got, in order, as SNS delivered them.
RECEIVED: list[str] = []
# The events `fake_handlers.authorize` got, in order.
AUTHORIZER_CALLS: list[dict] = []
