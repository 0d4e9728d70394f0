"""Known, deliberate differences from upstream (see DIFFERENCES.md).

Each rule has the id of its section in DIFFERENCES.md, and a predicate over
the step and both normalised answers.  A disagreement that a rule matches
is counted as deliberate, not as a failure; the report lists how many each
rule matched.
"""

import os


def _unknown_inventory_field(step, upstream, ours):
    """Upstream answers 500 for an unknown top-level field in PUT
    .../inventories (its handler reads the body past schema validation);
    we refuse it with a 400 in Placement's error format."""
    if step.kind != 'put_inventories' or not isinstance(step.body, dict):
        return False
    known = {'resource_provider_generation', 'inventories'}
    return (bool(set(step.body) - known) and upstream['status'] == 500
            and ours['status'] == 400)


RULES = [
    ('D1', _unknown_inventory_field),
]


def match(step, upstream, ours):
    for rule_id, predicate in RULES:
        if predicate(step, upstream, ours):
            return rule_id
    return None


def documented_ids():
    """Rule ids that have a `## Dn` heading in DIFFERENCES.md."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'DIFFERENCES.md')
    ids = set()
    with open(path) as fh:
        for line in fh:
            if line.startswith('## D'):
                ids.add(line[3:].split()[0].rstrip(':'))
    return ids
