"""Seeded generator of Placement requests, valid and invalid.

The generator keeps a small model of what exists (providers, custom
classes and traits, consumers) and picks each next request from it.  The
model only learns from the *reference* side's answers (upstream), so the
request stream is a pure function of the seed and of upstream's behaviour:
both servers get byte-identical requests, and ids (provider, consumer,
aggregate uuids, names) are chosen here, never by a server.

Values that each server must see in its own state (a provider's generation,
a consumer's generation) are placeholders ([`GenOf`], [`ConsumerGenOf`])
that the runner resolves on each side just before sending.  That keeps one
disagreement from cascading into every later request on the same provider,
while the generation itself is still compared wherever a response shows it.
"""

import random
import uuid as uuidlib

STANDARD_CLASSES = ['VCPU', 'MEMORY_MB', 'DISK_GB', 'SRIOV_NET_VF',
                    'IPV4_ADDRESS']
STANDARD_TRAITS = ['HW_CPU_X86_AVX', 'HW_CPU_X86_AVX2', 'HW_CPU_X86_SSE',
                   'STORAGE_DISK_SSD', 'HW_NIC_SRIOV', 'COMPUTE_VOLUME_MULTI_ATTACH']
VERSIONS = ['1.0', '1.2', '1.4', '1.5', '1.8', '1.10', '1.12', '1.13', '1.14',
            '1.15', '1.17', '1.18', '1.19', '1.20', '1.21', '1.22', '1.23',
            '1.25', '1.26', '1.27', '1.28', '1.29', '1.30', '1.31', '1.32',
            '1.33', '1.34', '1.35', '1.36', '1.37', '1.38', '1.39']
ADMIN = 'admin'


class GenOf:
    """The provider's current generation on the side being sent to."""

    def __init__(self, rp_uuid, delta=0):
        self.rp_uuid = rp_uuid
        self.delta = delta


class ConsumerGenOf:
    """The consumer's current generation (or null) on that side."""

    def __init__(self, consumer):
        self.consumer = consumer


class Step:
    def __init__(self, kind, method, path, version=None, body=None,
                 token=ADMIN, headers=None, raw_body=None):
        self.kind = kind
        self.method = method
        self.path = path
        self.version = version
        self.body = body
        self.token = token
        self.headers = dict(headers or {})
        self.raw_body = raw_body
        self.accept = 'application/json'

    def describe(self):
        return '%s %s @%s' % (self.method, self.path, self.version or '-')


def vnum(version):
    if version in (None, 'latest'):
        return 39
    return int(version.split('.')[1])


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.providers = {}          # uuid -> {'name', 'parent', 'root'}
        self.deleted = []            # uuids of deleted providers
        self.classes = []            # custom resource classes that exist
        self.traits = []             # custom traits that exist
        self.consumers = {}          # consumer -> (project, user)
        self.inventories = {}        # uuid -> {class: record}
        self.aggregates = [self.uuid() for _ in range(4)]
        self.projects = [self.uuid() for _ in range(2)]
        self.users = [self.uuid() for _ in range(2)]
        self.counter = 0
        self.kinds = [
            (8, self.create_provider), (3, self.get_provider),
            (4, self.list_providers), (2, self.update_provider),
            (2, self.delete_provider), (9, self.put_inventories),
            (3, self.post_inventory), (3, self.put_inventory),
            (2, self.delete_inventory), (3, self.get_inventories),
            (2, self.create_trait), (2, self.list_traits),
            (4, self.put_provider_traits), (2, self.get_provider_traits),
            (1, self.delete_provider_traits), (1, self.delete_trait),
            (2, self.create_class), (1, self.get_classes),
            (1, self.delete_class), (3, self.put_aggregates),
            (2, self.get_aggregates), (9, self.put_allocations),
            (2, self.post_allocations), (3, self.get_allocations),
            (2, self.delete_allocations), (2, self.provider_allocations),
            (3, self.usages), (7, self.candidates), (2, self.reshape),
            (4, self.misc),
        ]
        self.total_weight = sum(w for w, _ in self.kinds)

    # ------------------------------------------------------------ helpers
    def uuid(self):
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        return self.rng.choice(list(seq))

    def version(self, minimum=0, maximum=39):
        choices = [v for v in VERSIONS if minimum <= vnum(v) <= maximum]
        return self.pick(choices)

    def provider(self, allow_missing=0.05):
        if not self.providers or self.chance(allow_missing):
            if self.deleted and self.chance(0.5):
                return self.pick(self.deleted)
            return self.uuid()
        return self.pick(sorted(self.providers))

    def all_classes(self):
        return STANDARD_CLASSES + self.classes

    def all_traits(self):
        return STANDARD_TRAITS + self.traits

    def consumer(self, new=0.3):
        if not self.consumers or self.chance(new):
            return self.uuid()
        return self.pick(sorted(self.consumers))

    def next_step(self):
        point = self.rng.uniform(0, self.total_weight)
        for weight, make in self.kinds:
            point -= weight
            if point <= 0:
                return make()
        return self.kinds[-1][1]()

    # -------------------------------------------------- learning from upstream
    def learn(self, step, status, body):
        """Update the model with the reference side's answer to ``step``."""
        handler = getattr(step, 'learn', None)
        if handler is not None and 200 <= status < 300:
            handler(body)

    # --------------------------------------------------------------- providers
    def create_provider(self):
        v = self.version()
        self.counter += 1
        rp = self.uuid()
        body = {'name': 'rp-%d-%d' % (self.seed, self.counter), 'uuid': rp}
        parent = None
        if vnum(v) >= 14 and self.providers and self.chance(0.35):
            parent = self.pick(sorted(self.providers))
            body['parent_provider_uuid'] = parent
        bad = self.rng.random()
        if bad < 0.05 and self.providers:
            body['name'] = self.providers[
                self.pick(sorted(self.providers))]['name']
        elif bad < 0.08:
            body['uuid'] = 'not-a-uuid'
        elif bad < 0.10:
            body['name'] = 'x' * 201
        elif bad < 0.12:
            del body['name']
        elif bad < 0.14:
            body['colour'] = 'blue'
        elif bad < 0.16 and vnum(v) >= 14:
            body['parent_provider_uuid'] = self.uuid()
        step = Step('create_provider', 'POST', '/resource_providers', v, body)

        def learn(_resp, body=body):
            if body.get('uuid') == rp and 'name' in body:
                root = self.providers[parent]['root'] if parent else rp
                self.providers[rp] = {'name': body['name'], 'parent': parent,
                                      'root': root}
        step.learn = learn
        return step

    def get_provider(self):
        rp = self.provider(0.1)
        return Step('get_provider', 'GET', '/resource_providers/%s' % rp,
                    self.version())

    def list_providers(self):
        v = self.version()
        query = []
        n = vnum(v)
        if self.providers and self.chance(0.2):
            query.append('name=%s' % self.providers[
                self.pick(sorted(self.providers))]['name'])
        if self.chance(0.15):
            query.append('uuid=%s' % self.provider(0.3))
        if n >= 3 and self.chance(0.2):
            aggs = self.rng.sample(self.aggregates, self.rng.randint(1, 2))
            query.append('member_of=%s' % (
                'in:' + ','.join(aggs) if len(aggs) > 1 else aggs[0]))
        if n >= 4 and self.chance(0.3):
            query.append('resources=%s' % self.resources_query())
        if n >= 14 and self.providers and self.chance(0.2):
            query.append('in_tree=%s' % self.provider(0.1))
        if n >= 18 and self.chance(0.2):
            trait = self.pick(self.all_traits())
            query.append('required=%s%s' % (
                '!' if n >= 22 and self.chance(0.3) else '', trait))
        if self.chance(0.05):
            query.append('bogus=1')
        path = '/resource_providers'
        if query:
            path += '?' + '&'.join(query)
        return Step('list_providers', 'GET', path, v)

    def resources_query(self):
        classes = self.rng.sample(self.all_classes(),
                                  self.rng.randint(1, 2))
        parts = ['%s:%d' % (c, self.pick([1, 1, 2, 4, 8, 64, 1024]))
                 for c in classes]
        if self.chance(0.05):
            parts.append('VCPU:-1')
        if self.chance(0.03):
            parts.append('CUSTOM_NOPE:1')
        return ','.join(parts)

    def update_provider(self):
        v = self.version()
        rp = self.provider()
        self.counter += 1
        name = 'rp-%d-%d' % (self.seed, self.counter)
        if self.providers and self.chance(0.1):
            name = self.providers[self.pick(sorted(self.providers))]['name']
        body = {'name': name}
        if vnum(v) >= 14 and self.chance(0.3):
            info = self.providers.get(rp)
            if info and info['parent'] and self.chance(0.5):
                body['parent_provider_uuid'] = info['parent']
            else:
                body['parent_provider_uuid'] = self.provider(0.1)
        if self.chance(0.05):
            body['generation'] = 3
        step = Step('update_provider', 'PUT', '/resource_providers/%s' % rp,
                    v, body)

        def learn(_resp):
            if rp in self.providers:
                self.providers[rp]['name'] = name
        step.learn = learn
        return step

    def delete_provider(self):
        rp = self.provider()
        step = Step('delete_provider', 'DELETE',
                    '/resource_providers/%s' % rp, self.version())

        def learn(_resp):
            self.providers.pop(rp, None)
            self.inventories.pop(rp, None)
            self.deleted.append(rp)
        step.learn = learn
        return step

    # ------------------------------------------------------------- inventories
    def inventory_record(self, invalid=0.1):
        total = self.pick([1, 2, 4, 8, 16, 64, 1024])
        record = {'total': total}
        if self.chance(0.4):
            record['reserved'] = self.rng.randint(0, total)
        if self.chance(0.3):
            record['min_unit'] = self.pick([1, 1, 2])
        if self.chance(0.3):
            record['max_unit'] = self.pick([1, 2, 4, total, total * 2])
        if self.chance(0.3):
            record['step_size'] = self.pick([1, 2, 4])
        if self.chance(0.4):
            record['allocation_ratio'] = self.pick([0.5, 1.0, 1.5, 2.0, 16.0])
        bad = self.rng.random()
        if bad < invalid * 0.25:
            record['reserved'] = total + 1
        elif bad < invalid * 0.4:
            record['total'] = 0
        elif bad < invalid * 0.55:
            record['step_size'] = 0
        elif bad < invalid * 0.7:
            record['total'] = 'many'
        elif bad < invalid * 0.85:
            record['flavour'] = 'x'
        elif bad < invalid:
            # Capacity below one after the ratio (the example).
            record.update({'allocation_ratio': 0.5, 'step_size': 2,
                           'total': 1})
            record.pop('reserved', None)
        return record

    def inventory_classes(self):
        k = self.rng.randint(1, 3)
        classes = self.rng.sample(self.all_classes(),
                                  min(k, len(self.all_classes())))
        if self.chance(0.04):
            classes.append('CUSTOM_MISSING')
        return classes

    def put_inventories(self):
        v = self.version()
        rp = self.provider()
        invs = {c: self.inventory_record() for c in self.inventory_classes()}
        if self.chance(0.1):
            invs = {}
        body = {'resource_provider_generation': GenOf(rp),
                'inventories': invs}
        bad = self.rng.random()
        if bad < 0.04:
            body['resource_provider_generation'] = GenOf(rp, delta=-1)
        elif bad < 0.06:
            del body['resource_provider_generation']
        elif bad < 0.08:
            body['colour'] = 'red'
        elif bad < 0.11:
            # A key that is no class name, with or without a record.
            invs[self.pick(['vcpu', 'x-y', 'Disk'])] = self.pick(
                [5, [], {'total': 1}, 'x'])
        step = Step('put_inventories', 'PUT',
                    '/resource_providers/%s/inventories' % rp, v, body)

        def learn(_resp):
            self.inventories[rp] = dict(invs)
        step.learn = learn
        return step

    def post_inventory(self):
        v = self.version()
        rp = self.provider()
        rc = self.pick(self.all_classes())
        body = dict(self.inventory_record(), resource_class=rc)
        step = Step('post_inventory', 'POST',
                    '/resource_providers/%s/inventories' % rp, v, body)

        def learn(_resp):
            self.inventories.setdefault(rp, {})[rc] = body
        step.learn = learn
        return step

    def put_inventory(self):
        v = self.version()
        rp = self.provider()
        existing = sorted(self.inventories.get(rp, {}))
        rc = self.pick(existing) if existing and self.chance(0.8) else \
            self.pick(self.all_classes())
        body = dict(self.inventory_record(),
                    resource_provider_generation=GenOf(rp))
        return Step('put_inventory', 'PUT',
                    '/resource_providers/%s/inventories/%s' % (rp, rc), v,
                    body)

    def delete_inventory(self):
        v = self.version()
        rp = self.provider()
        if self.chance(0.25):
            step = Step('delete_inventories', 'DELETE',
                        '/resource_providers/%s/inventories' % rp, v)

            def learn(_resp):
                self.inventories.pop(rp, None)
            step.learn = learn
            return step
        existing = sorted(self.inventories.get(rp, {}))
        rc = self.pick(existing) if existing and self.chance(0.8) else \
            self.pick(self.all_classes())
        step = Step('delete_inventory', 'DELETE',
                    '/resource_providers/%s/inventories/%s' % (rp, rc), v)

        def learn(_resp):
            self.inventories.get(rp, {}).pop(rc, None)
        step.learn = learn
        return step

    def get_inventories(self):
        v = self.version()
        rp = self.provider()
        if self.chance(0.5):
            return Step('get_inventories', 'GET',
                        '/resource_providers/%s/inventories' % rp, v)
        rc = self.pick(self.all_classes())
        return Step('get_inventory', 'GET',
                    '/resource_providers/%s/inventories/%s' % (rp, rc), v)

    # ------------------------------------------------------------------ traits
    def create_trait(self):
        v = self.version(minimum=6)
        name = 'CUSTOM_T%d' % self.rng.randint(0, 9)
        if self.chance(0.08):
            name = 'NOT_CUSTOM'
        step = Step('create_trait', 'PUT', '/traits/%s' % name, v)

        def learn(_resp):
            if name.startswith('CUSTOM_') and name not in self.traits:
                self.traits.append(name)
        step.learn = learn
        return step

    def list_traits(self):
        v = self.version(minimum=6)
        query = self.pick(['', '?name=startswith:CUSTOM',
                           '?name=in:%s' % ','.join(
                               self.rng.sample(self.all_traits(), 2)),
                           '?associated=true', '?associated=false',
                           '?name=bogus:x', '?associated=maybe'])
        return Step('list_traits', 'GET', '/traits' + query, v)

    def put_provider_traits(self):
        v = self.version(minimum=6)
        rp = self.provider()
        traits = self.rng.sample(self.all_traits(), self.rng.randint(0, 3))
        if self.chance(0.05):
            traits.append('CUSTOM_UNKNOWN')
        body = {'resource_provider_generation': GenOf(rp), 'traits': traits}
        if self.chance(0.04):
            body['resource_provider_generation'] = GenOf(rp, delta=1)
        elif self.chance(0.03):
            body['traits'] = 'HW_CPU_X86_AVX'
        return Step('put_provider_traits', 'PUT',
                    '/resource_providers/%s/traits' % rp, v, body)

    def get_provider_traits(self):
        return Step('get_provider_traits', 'GET',
                    '/resource_providers/%s/traits' % self.provider(),
                    self.version(minimum=6))

    def delete_provider_traits(self):
        return Step('delete_provider_traits', 'DELETE',
                    '/resource_providers/%s/traits' % self.provider(),
                    self.version(minimum=6))

    def delete_trait(self):
        name = self.pick(self.traits) if self.traits and self.chance(0.7) \
            else self.pick(['CUSTOM_T9', 'HW_CPU_X86_AVX'])
        step = Step('delete_trait', 'DELETE', '/traits/%s' % name,
                    self.version(minimum=6))

        def learn(_resp):
            if name in self.traits:
                self.traits.remove(name)
        step.learn = learn
        return step

    # -------------------------------------------------------- resource classes
    def create_class(self):
        name = 'CUSTOM_C%d' % self.rng.randint(0, 5)
        if self.chance(0.4):
            v = self.version(minimum=7)
            step = Step('put_class', 'PUT', '/resource_classes/%s' % name, v)
        else:
            v = self.version(minimum=2)
            body = {'name': name}
            if self.chance(0.08):
                body = {'name': 'lowercase'}
            step = Step('create_class', 'POST', '/resource_classes', v, body)

        def learn(_resp):
            if name not in self.classes:
                self.classes.append(name)
        step.learn = learn
        return step

    def get_classes(self):
        v = self.version(minimum=2)
        if self.chance(0.5):
            return Step('list_classes', 'GET', '/resource_classes', v)
        name = self.pick(self.all_classes() + ['CUSTOM_NONE'])
        return Step('get_class', 'GET', '/resource_classes/%s' % name, v)

    def delete_class(self):
        name = self.pick(self.classes) if self.classes and self.chance(0.8) \
            else self.pick(['VCPU', 'CUSTOM_NONE'])
        step = Step('delete_class', 'DELETE', '/resource_classes/%s' % name,
                    self.version(minimum=2))

        def learn(_resp):
            if name in self.classes:
                self.classes.remove(name)
        step.learn = learn
        return step

    # -------------------------------------------------------------- aggregates
    def put_aggregates(self):
        v = self.version(minimum=1)
        rp = self.provider()
        aggs = self.rng.sample(self.aggregates, self.rng.randint(0, 3))
        if self.chance(0.04):
            aggs.append('not-a-uuid')
        if vnum(v) >= 19:
            body = {'aggregates': aggs, 'resource_provider_generation':
                    GenOf(rp, delta=0 if self.chance(0.95) else -1)}
        else:
            body = aggs
        return Step('put_aggregates', 'PUT',
                    '/resource_providers/%s/aggregates' % rp, v, body)

    def get_aggregates(self):
        return Step('get_aggregates', 'GET',
                    '/resource_providers/%s/aggregates' % self.provider(),
                    self.version(minimum=1))

    # ------------------------------------------------------------- allocations
    def amounts(self, rp):
        invs = self.inventories.get(rp, {})
        classes = sorted(invs) if invs and self.chance(0.85) else \
            [self.pick(self.all_classes())]
        chosen = self.rng.sample(classes, self.rng.randint(1, len(classes)))
        out = {}
        for rc in chosen:
            rec = invs.get(rc, {})
            total = rec.get('total', 4) if isinstance(
                rec.get('total', 4), int) else 4
            out[rc] = self.pick([1, 1, 2, max(total // 2, 1), total,
                                 total + 1])
        if self.chance(0.03):
            out[self.pick(sorted(out))] = 0
        return out

    def put_allocations(self):
        v = self.version(minimum=0)
        n = vnum(v)
        consumer = self.consumer()
        rps = self.rng.sample(sorted(self.providers),
                              min(len(self.providers),
                                  self.rng.randint(1, 2))) \
            if self.providers else [self.uuid()]
        if self.chance(0.05):
            rps = [self.uuid()]
        project, user = self.consumers.get(
            consumer, (self.pick(self.projects), self.pick(self.users)))
        if n >= 12:
            allocs = {rp: {'resources': self.amounts(rp)} for rp in rps}
            if self.chance(0.05):
                allocs = {}
        else:
            allocs = [{'resource_provider': {'uuid': rp},
                       'resources': self.amounts(rp)} for rp in rps]
        body = {'allocations': allocs}
        if n >= 8 and self.chance(0.95):
            body['project_id'] = project
            body['user_id'] = user
        if n >= 28:
            body['consumer_generation'] = ConsumerGenOf(consumer)
            if self.chance(0.05):
                body['consumer_generation'] = 7
        if n >= 38 and self.chance(0.6):
            body['consumer_type'] = self.pick(['INSTANCE', 'MIGRATION',
                                               'bad type'])
        if self.chance(0.03):
            body['extra'] = True
        step = Step('put_allocations', 'PUT', '/allocations/%s' % consumer,
                    v, body)

        def learn(_resp):
            if allocs:
                self.consumers[consumer] = (project, user)
            else:
                self.consumers.pop(consumer, None)
        step.learn = learn
        return step

    def post_allocations(self):
        v = self.version(minimum=13)
        n = vnum(v)
        body = {}
        for _ in range(self.rng.randint(1, 2)):
            consumer = self.consumer()
            project, user = self.consumers.get(
                consumer, (self.pick(self.projects), self.pick(self.users)))
            rps = self.rng.sample(sorted(self.providers),
                                  min(len(self.providers), 1)) \
                if self.providers else [self.uuid()]
            entry = {'allocations': {rp: {'resources': self.amounts(rp)}
                                     for rp in rps},
                     'project_id': project, 'user_id': user}
            if n >= 28:
                entry['consumer_generation'] = ConsumerGenOf(consumer)
            if n >= 38:
                entry['consumer_type'] = 'INSTANCE'
            body[consumer] = entry
        step = Step('post_allocations', 'POST', '/allocations', v, body)

        def learn(_resp):
            for consumer, entry in body.items():
                self.consumers[consumer] = (entry['project_id'],
                                            entry['user_id'])
        step.learn = learn
        return step

    def get_allocations(self):
        return Step('get_allocations', 'GET',
                    '/allocations/%s' % self.consumer(0.2), self.version())

    def delete_allocations(self):
        consumer = self.consumer(0.15)
        step = Step('delete_allocations', 'DELETE',
                    '/allocations/%s' % consumer, self.version())

        def learn(_resp):
            self.consumers.pop(consumer, None)
        step.learn = learn
        return step

    def provider_allocations(self):
        return Step('provider_allocations', 'GET',
                    '/resource_providers/%s/allocations' % self.provider(),
                    self.version())

    def usages(self):
        if self.chance(0.5):
            return Step('provider_usages', 'GET',
                        '/resource_providers/%s/usages' % self.provider(),
                        self.version())
        v = self.version(minimum=9)
        query = '?project_id=%s' % self.pick(self.projects)
        if self.chance(0.4):
            query += '&user_id=%s' % self.pick(self.users)
        if vnum(v) >= 38 and self.chance(0.3):
            query += '&consumer_type=%s' % self.pick(['INSTANCE', 'all',
                                                      'unknown'])
        if self.chance(0.05):
            query = ''
        return Step('usages', 'GET', '/usages' + query, v)

    # -------------------------------------------------------------- candidates
    def candidates(self):
        v = self.version(minimum=10)
        n = vnum(v)
        query = ['resources=%s' % self.resources_query()]
        if n >= 16 and self.chance(0.3):
            query.append('limit=%d' % self.rng.randint(1, 3))
        if n >= 17 and self.chance(0.3):
            trait = self.pick(self.all_traits())
            query.append('required=%s%s' % (
                '!' if n >= 22 and self.chance(0.3) else '', trait))
        if n >= 21 and self.chance(0.2):
            query.append('member_of=%s' % self.pick(self.aggregates))
        if n >= 25 and self.chance(0.3):
            query.append('resources1=%s' % self.resources_query())
            query.append('group_policy=%s' % self.pick(['none', 'isolate']))
        if n >= 31 and self.providers and self.chance(0.15):
            query.append('in_tree=%s' % self.provider(0.1))
        if self.chance(0.04):
            query = ['resources=']
        return Step('candidates', 'GET',
                    '/allocation_candidates?' + '&'.join(query), v)

    # ---------------------------------------------------------------- reshaper
    def reshape(self):
        v = self.version(minimum=30)
        rps = self.rng.sample(sorted(self.providers),
                              min(len(self.providers), 2)) \
            if self.providers else [self.uuid()]
        inventories = {}
        for rp in rps:
            invs = {c: self.inventory_record(invalid=0.05)
                    for c in self.inventory_classes()}
            inventories[rp] = {'resource_provider_generation': GenOf(rp),
                               'inventories': invs}
        allocations = {}
        for consumer in sorted(self.consumers)[:2]:
            project, user = self.consumers[consumer]
            rp = self.pick(rps)
            invs = inventories[rp]['inventories']
            resources = {rc: 1 for rc in list(invs)[:1]}
            if not resources:
                continue
            allocations[consumer] = {
                'allocations': {rp: {'resources': resources}},
                'project_id': project, 'user_id': user,
                'consumer_generation': ConsumerGenOf(consumer)}
            if vnum(v) >= 38:
                allocations[consumer]['consumer_type'] = 'INSTANCE'
        body = {'inventories': inventories, 'allocations': allocations}
        step = Step('reshape', 'POST', '/reshaper', v, body)

        def learn(_resp):
            for rp, entry in inventories.items():
                self.inventories[rp] = dict(entry['inventories'])
            for consumer in allocations:
                self.consumers.setdefault(consumer, (self.projects[0],
                                                     self.users[0]))
        step.learn = learn
        return step

    # -------------------------------------------------- protocol-level errors
    def misc(self):
        rp = self.provider()
        choice = self.rng.randint(0, 11)
        if choice >= 10:
            # What comes back when the client asks for something else than
            # JSON, or for nothing in particular.
            accept = self.pick([None, '*/*', 'text/plain', 'text/html',
                                'application/xml'])
            path = self.pick(['/nothing', '/resource_providers/%s' % rp,
                              '/resource_providers/%s/inventories' % rp,
                              '/resource_classes/CUSTOM_NONE', '/traits'])
            step = Step('accept_%s' % (accept or 'none'), self.pick(
                ['GET', 'GET', 'DELETE']), path, self.version(minimum=7))
            step.accept = accept
            return step
        if choice == 0:
            return Step('unknown_route', 'GET', self.pick(
                ['/nothing', '/resource_providers/%s/nothing' % rp,
                 '/traits/X/Y', '/resource_providers/%s/inventories/VCPU/x'
                 % rp]), self.version())
        if choice == 1:
            return Step('no_token', 'GET', '/resource_providers',
                        self.version(), token=None)
        if choice == 2:
            return Step('forbidden', self.pick(['GET', 'DELETE']),
                        self.pick(['/resource_providers',
                                   '/resource_providers/%s' % rp,
                                   '/traits', '/usages?project_id=x']),
                        self.version(minimum=9), token='user:project')
        if choice == 3:
            return Step('bad_version', 'GET', '/resource_providers',
                        self.pick(['1.99', '2.0', 'x.y', '1.']))
        if choice == 4:
            return Step('method_not_allowed', 'PATCH',
                        self.pick(['/resource_providers',
                                   '/resource_providers/%s' % rp,
                                   '/allocations/%s' % self.uuid()]),
                        self.version())
        if choice == 5:
            return Step('wrong_content_type', 'POST', '/resource_providers',
                        self.version(), raw_body=b'name=x',
                        headers={'content-type': 'text/plain'})
        if choice == 6:
            return Step('bad_json', 'PUT', '/resource_providers/%s' % rp,
                        self.version(), raw_body=self.pick([
                            b'{"name": ', b'{"name" "x"}', b'{"name": "x",}',
                            b'{"name": "x"} y', b'["x" "y"]', b'{"name": tru}',
                            b'{"name": "a\\qb"}', b'{\n "name":\n 01}',
                            b'{"name": NaN}']),
                        headers={'content-type': 'application/json'})
        if choice == 7:
            return Step('root', 'GET', '/', self.version())
        if choice == 8:
            return Step('missing_version_route', 'GET',
                        '/resource_providers/%s/allocations' % rp, '1.0')
        return Step('missing_provider', 'GET',
                    '/resource_providers/%s/%s' % (
                        self.uuid(), self.pick(['inventories', 'usages',
                                                'traits', 'aggregates',
                                                'allocations'])),
                    self.version(minimum=6))
