"""The sales example's handlers, with every execution written to the ledger."""

from examples.sales.handlers import registry as example
from runner import Registry
from tests.handlers.ledger import ledgered

registry = Registry(dict(example))
registry.harness("process", ledgered)
