"""Known, deliberate differences from upstream (see DIFFERENCES.md).

Each rule has the id of its section in DIFFERENCES.md, and a predicate over
the step and both normalised answers.  A disagreement that a rule matches
is counted as deliberate, not as a failure; the report lists how many each
rule matched.
"""

import os
import re


def _unknown_inventory_field(step, upstream, ours):
    """A key of the `inventories` map in `PUT .../inventories` that is not a
    resource class name (say `vcpu` or `x-y`) escapes upstream's schema,
    whose records are only checked under class-shaped keys. When its value
    is not an inventory record upstream's handler crashes on it (500); we
    answer what upstream answers when the value happens to be a record:
    400 "Unknown resource class ..." (or 409 when the generation is stale)."""
    if step.kind != 'put_inventories' or not isinstance(step.body, dict):
        return False
    inventories = step.body.get('inventories')
    if not isinstance(inventories, dict):
        return False
    odd = [k for k in inventories if not re.match(r'^[A-Z0-9_]+$', k)]
    return (bool(odd) and upstream['status'] == 500
            and ours['status'] in (400, 409))


def _only_error_details_differ(upstream, ours):
    """Both answers are the same but for errors[].detail: returns the
    (upstream, ours) detail pairs, or None."""
    if upstream['status'] != ours['status'] or \
            upstream['headers'] != ours['headers']:
        return None
    left, right = upstream['body'], ours['body']
    if not isinstance(left, dict) or not isinstance(right, dict) or \
            set(left) != {'errors'} or set(right) != {'errors'}:
        return None
    if len(left['errors']) != len(right['errors']):
        return None
    pairs = []
    for a, b in zip(left['errors'], right['errors']):
        if {k: v for k, v in a.items() if k != 'detail'} != \
                {k: v for k, v in b.items() if k != 'detail'}:
            return None
        pairs.append((a.get('detail', ''), b.get('detail', '')))
    return pairs


def _invalid_inventory_lists(step, upstream, ours):
    """Upstream builds "Inventory for 'A, B' on resource provider 'X, Y'
    invalid." by iterating Python sets (hash order; for provider uuids a
    per-process random order): we name the same classes and providers,
    sorted."""
    pairs = _only_error_details_differ(upstream, ours)
    if not pairs:
        return False
    pattern = re.compile(r"Inventory for '([^']*)' on resource provider "
                         r"'([^']*)' invalid")

    def key(text):
        found = pattern.search(text)
        if not found:
            return None
        return (pattern.sub('', text),
                sorted(found.group(1).split(', ')),
                sorted(found.group(2).split(', ')))
    return all(key(a) is not None and key(a) == key(b) for a, b in pairs)


def _schema_dump_layout(step, upstream, ours):
    """A JSON-schema validation error ends with a dump of the failing
    schema and instance that upstream prints with Python's pprint (its key
    order, its line wrapping). The message before it is the same; the dump
    is laid out differently."""
    pairs = _only_error_details_differ(upstream, ours)
    if not pairs:
        return False
    marker = 'Failed validating'
    return all(marker in a and marker in b and
               a.split(marker)[0] == b.split(marker)[0] and
               a.split(marker)[1].split(' in ')[0] ==
               b.split(marker)[1].split(' in ')[0]
               for a, b in pairs)


def _json_parser_text(step, upstream, ours):
    """A body that is not JSON: both answer 400 "Malformed JSON: ..."; where
    our Python-style scanner has nothing to say the explanation is
    serde_json's. Python also takes NaN and Infinity as numbers: upstream
    then fails the schema (400) where we find the body malformed (400)."""
    pairs = _only_error_details_differ(upstream, ours)
    if not pairs:
        return False
    prefix = 'Malformed JSON: '
    if step.raw_body is not None and (b'NaN' in step.raw_body or
                                      b'Infinity' in step.raw_body):
        return all(prefix in b and 'JSON does not validate' in a
                   for a, b in pairs)
    return all(prefix in a and prefix in b and
               a.split(prefix)[0] == b.split(prefix)[0] for a, b in pairs)


def _duplicate_inventory_sql(step, upstream, ours):
    """Adding an inventory for a class the provider already has: both
    answer 409 placement.concurrent_update; upstream's detail is the
    database driver's integrity error (SQL text and all), ours names the
    class and provider."""
    pairs = _only_error_details_differ(upstream, ours)
    if not pairs:
        return False
    return all('IntegrityError' in a and 'already exists' in b
               for a, b in pairs)


def _touched_provider_update_time(step, upstream, ours):
    """Changing a provider's aggregates without a generation (before 1.19)
    or removing allocations from it stamps our provider row's update time
    (the candidates cache finds changed providers by it); upstream leaves
    the row alone. A child provider never updated otherwise then shows a
    last-modified on its first `PUT /resource_providers/{uuid}` here and
    none upstream."""
    if step.kind != 'update_provider':
        return False
    left = dict(upstream, headers=dict(upstream['headers']))
    right = dict(ours, headers=dict(ours['headers']))
    if left['headers'].get('last-modified') is not False or \
            right['headers'].get('last-modified') is not True:
        return False
    left['headers'].pop('last-modified')
    right['headers'].pop('last-modified')
    return left == right


def _candidates_limit_choice(step, upstream, ours):
    """`GET /allocation_candidates?...&limit=N` without randomisation keeps
    the first N candidates in the order they were found; upstream's order
    is its database's row order for the query (unspecified), ours is
    provider creation order. Same status, same number of candidates."""
    if step.kind != 'candidates' or 'limit=' not in step.path:
        return False
    if upstream['status'] != 200 or ours['status'] != 200 or \
            upstream['headers'] != ours['headers']:
        return False
    left = upstream['body'].get('allocation_requests')
    right = ours['body'].get('allocation_requests')
    return isinstance(left, list) and isinstance(right, list) and \
        len(left) == len(right)


def _which_schema_error_first(step, upstream, ours):
    """A body that both lacks a required field and has an unexpected one:
    upstream reports whichever keyword comes first in its schema's dict
    (an accident of how each microversion's schema was copied and
    extended); we report the missing field first."""
    pairs = _only_error_details_differ(upstream, ours)
    if not pairs:
        return False
    required = 'is a required property'
    additional = 'Additional properties are not allowed'

    def first(text):
        # The message right after the prefix, before the schema dump.
        return text.split('JSON does not validate: ', 1)[-1].split(
            'Failed validating', 1)[0]
    return all('JSON does not validate: ' in a and
               'JSON does not validate: ' in b and
               additional in first(a) and required in first(b)
               for a, b in pairs)


RULES = [
    ('D1', _unknown_inventory_field),
    ('D2', _invalid_inventory_lists),
    ('D3', _schema_dump_layout),
    ('D4', _json_parser_text),
    ('D5', _duplicate_inventory_sql),
    ('D6', _touched_provider_update_time),
    ('D7', _candidates_limit_choice),
    ('D8', _which_schema_error_first),
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
