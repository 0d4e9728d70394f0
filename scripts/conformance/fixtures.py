"""Gabbi fixture classes that build upstream's test data over HTTP.

Each class is named after the fixture class that upstream's gabbi YAML files
list under ``fixtures:``.  Upstream builds the data with direct database
object calls inside the test process; here the same providers, inventories,
traits, aggregates, resource classes and allocations are created through the
public Placement API (as an admin, ``x-auth-token: admin``), in the same
order, so that ids, generations and result ordering come out the same.  The
environment variables the YAML files read through ``$ENVIRON[...]`` are set
exactly as upstream sets them.

Besides data, a fixture may need the server configured in a particular way;
that is described by ``server_options`` and applied by the harness when it
starts the server (see ``server.py``):

``enforce_new_defaults``  oslo.policy's ``[oslo_policy]enforce_new_defaults``.
``open_policy``           write a policy file that opens every rule but
                          ``admin_api`` to anyone (``"@"``).
``cors_allowed_origin`` / ``cors_allow_headers``  the CORS middleware config.

The harness sets ``BASE_URL`` before the gabbi suite runs.
"""

import os
import uuid

from gabbi import fixture as gabbi_fixture

from conformance.client import Client, quote

BASE_URL = None

# The microversions used for loading data.  Aggregates are set with the
# pre-1.19 list form, which (like upstream's fixture helper) does not bump
# the provider generation.
MV_PROVIDERS = '1.20'
MV_AGGREGATES = '1.18'
MV_CLASSES = '1.7'
MV_TRAITS = '1.6'
MV_ALLOCATIONS = '1.28'


def _new_uuid():
    return str(uuid.uuid4())


class Sentinels:
    """Stable random uuid per name (like oslo's uuidsentinel)."""

    def __init__(self):
        self._values = {}

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return self._values.setdefault(name, _new_uuid())


class Provider:
    def __init__(self, name, uuid_):
        self.name = name
        self.uuid = uuid_


class Builder:
    """HTTP equivalents of upstream's functional-test DB helpers."""

    def __init__(self, base_url):
        self.client = Client(base_url, token='admin',
                             microversion=MV_PROVIDERS)
        self.uuids = Sentinels()
        self._known_classes = set()
        self._known_traits = set()

    # -- providers --------------------------------------------------------
    def generation(self, rp):
        data = self.client.get('/resource_providers/%s' % rp.uuid,
                               version=MV_PROVIDERS)
        return data['generation']

    def create_provider(self, name, *aggregates, parent=None, uuid=None):
        rp_uuid = uuid or getattr(self.uuids, name)
        body = {'name': name, 'uuid': rp_uuid}
        if parent:
            body['parent_provider_uuid'] = parent
        self.client.post('/resource_providers', body, expect=200,
                         version=MV_PROVIDERS)
        rp = Provider(name, rp_uuid)
        if aggregates:
            self.set_aggregates(rp, aggregates)
        return rp

    def set_aggregates(self, rp, aggregates):
        self.client.put('/resource_providers/%s/aggregates' % rp.uuid,
                        list(aggregates), expect=200, version=MV_AGGREGATES)

    # -- resource classes -------------------------------------------------
    def create_resource_class(self, name):
        self.client.put('/resource_classes/%s' % quote(name),
                        expect=201, version=MV_CLASSES)
        self._known_classes.add(name)

    def ensure_resource_class(self, name):
        if name in self._known_classes:
            return
        if name.startswith('CUSTOM_'):
            self.client.put('/resource_classes/%s' % quote(name),
                            expect=(201, 204), version=MV_CLASSES)
        self._known_classes.add(name)

    def add_inventory(self, rp, rc, total, **fields):
        self.ensure_resource_class(rc)
        fields.setdefault('max_unit', total)
        body = dict(fields, resource_class=rc, total=total,
                    resource_provider_generation=self.generation(rp))
        self.client.post('/resource_providers/%s/inventories' % rp.uuid,
                         body, expect=201, version=MV_PROVIDERS)

    # -- traits -----------------------------------------------------------
    def ensure_trait(self, name):
        if name in self._known_traits:
            return
        if name.startswith('CUSTOM_'):
            self.client.put('/traits/%s' % quote(name), expect=(201, 204),
                            version=MV_TRAITS)
        self._known_traits.add(name)

    def set_traits(self, rp, *traits):
        for name in traits:
            self.ensure_trait(name)
        body = {'traits': list(traits),
                'resource_provider_generation': self.generation(rp)}
        self.client.put('/resource_providers/%s/traits' % rp.uuid, body,
                        expect=200, version=MV_TRAITS)

    # -- allocations ------------------------------------------------------
    def set_allocation(self, rp, consumer, resources, project_id, user_id):
        """Allocate ``resources`` from one provider to a new consumer."""
        body = {
            'allocations': {rp.uuid: {'resources': dict(resources)}},
            'project_id': project_id,
            'user_id': user_id,
            'consumer_generation': None,
        }
        self.client.put('/allocations/%s' % consumer, body, expect=204,
                        version=MV_ALLOCATIONS)


def _setenv(name, value):
    os.environ[name] = value


class APIFixture(gabbi_fixture.GabbiFixture):
    """A fresh, empty placement service plus the common env variables."""

    server_options = {'enforce_new_defaults': False}

    _UUID_VARS = (
        'RP_UUID', 'RP_NAME', 'RP_UUID1', 'RP_NAME1', 'RP_UUID2', 'RP_NAME2',
    )
    _MORE_UUID_VARS = (
        'PROJECT_ID', 'ADMIN_PROJECT_ID', 'SERVICE_PROJECT_ID', 'USER_ID',
        'PROJECT_ID_ALT', 'USER_ID_ALT', 'INSTANCE_UUID', 'MIGRATION_UUID',
        'CONSUMER_UUID', 'PARENT_PROVIDER_UUID', 'ALT_PARENT_PROVIDER_UUID',
    )

    def start_fixture(self):
        if BASE_URL is None:
            raise RuntimeError('conformance.fixtures.BASE_URL is not set')
        self.api = Builder(BASE_URL)
        for name in self._UUID_VARS:
            _setenv(name, _new_uuid())
        for suffix in ('', '1', '2'):
            _setenv('CUSTOM_RES_CLASS' + suffix, 'CUSTOM_IRON_NFV' + suffix)
        for name in self._MORE_UUID_VARS:
            _setenv(name, _new_uuid())
        self.load()

    def load(self):
        """Create this fixture's data (subclasses)."""

    def stop_fixture(self):
        pass


class AllocationFixture(APIFixture):
    """One provider (VCPU 10, DISK_GB 2048) and three consumers using it."""

    def load(self):
        api = self.api
        _setenv('ALT_USER_ID', _new_uuid())
        project = os.environ['PROJECT_ID']
        user = os.environ['USER_ID']
        alt_user = os.environ['ALT_USER_ID']

        rp = api.create_provider(os.environ['RP_NAME'],
                                 uuid=os.environ['RP_UUID'])
        api.add_inventory(rp, 'DISK_GB', 2048,
                          step_size=10, min_unit=10, max_unit=1000)
        api.add_inventory(rp, 'VCPU', 10, max_unit=10)

        disk_consumer = _new_uuid()
        api.set_allocation(rp, disk_consumer, {'DISK_GB': 1000},
                           project, user)
        _setenv('CONSUMER_0', disk_consumer)

        cpu_consumer = _new_uuid()
        api.set_allocation(rp, cpu_consumer, {'VCPU': 6}, project, user)
        _setenv('CONSUMER_ID', cpu_consumer)

        alt_consumer = _new_uuid()
        _setenv('ALT_CONSUMER_ID', alt_consumer)
        api.set_allocation(rp, alt_consumer, {'DISK_GB': 20, 'VCPU': 1},
                           project, alt_user)

        # A provider that the fixture does not create.
        _setenv('ALT_RP_UUID', _new_uuid())
        _setenv('ALT_RP_NAME', _new_uuid())


class SharedStorageFixture(APIFixture):
    """Two compute nodes (with NUMA/PF children) sharing two storage pools."""

    def load(self):
        api = self.api
        agg = _new_uuid()
        cn1 = api.create_provider('cn1', agg)
        cn2 = api.create_provider('cn2', agg)
        ss = api.create_provider('ss', agg)
        ss2 = api.create_provider('ss2', agg)
        numa = {}
        for cn_idx, cn in ((1, cn1), (2, cn2)):
            for n in (1, 2):
                name = 'numa%d_%d' % (cn_idx, n)
                numa[name] = api.create_provider(name, parent=cn.uuid)
        pfs = {}
        for cn_idx in (1, 2):
            for n in (1, 2):
                name = 'pf%d_%d' % (cn_idx, n)
                pfs[name] = api.create_provider(
                    name, parent=numa['numa%d_%d' % (cn_idx, n)].uuid)

        _setenv('AGG_UUID', agg)
        for var, rp in (('CN1_UUID', cn1), ('CN2_UUID', cn2),
                        ('SS_UUID', ss), ('SS2_UUID', ss2)):
            _setenv(var, rp.uuid)
        for name, rp in numa.items():
            _setenv(name.upper() + '_UUID', rp.uuid)
        for name, rp in pfs.items():
            _setenv(name.upper() + '_UUID', rp.uuid)

        for cn in (cn1, cn2):
            api.add_inventory(cn, 'VCPU', 24, allocation_ratio=16.0)
            api.add_inventory(cn, 'MEMORY_MB', 128 * 1024,
                              allocation_ratio=1.5)
        api.set_traits(cn1, 'HW_CPU_X86_SSE', 'HW_CPU_X86_SSE2')
        api.add_inventory(cn2, 'DISK_GB', 2000, reserved=100,
                          allocation_ratio=1.0)
        for shared in (ss, ss2):
            api.add_inventory(shared, 'DISK_GB', 2000, reserved=100,
                              allocation_ratio=1.0)
            api.set_traits(shared, 'MISC_SHARES_VIA_AGGREGATE')
        for name in ('pf1_1', 'pf1_2', 'pf2_1', 'pf2_2'):
            api.add_inventory(pfs[name], 'SRIOV_NET_VF', 8,
                              allocation_ratio=1.0)


class NUMAAggregateFixture(APIFixture):
    """Resource-less compute nodes with NUMA children and sharing storage."""

    def load(self):
        api = self.api
        agg_a, agg_b, agg_c = _new_uuid(), _new_uuid(), _new_uuid()
        cn1 = api.create_provider('cn1', agg_a)
        cn2 = api.create_provider('cn2', agg_a, agg_b)
        ss1 = api.create_provider('ss1', agg_a)
        ss2 = api.create_provider('ss2', agg_c)
        numa1_1 = api.create_provider('numa1_1', agg_c, parent=cn1.uuid)
        numa1_2 = api.create_provider('numa1_2', parent=cn1.uuid)
        numa2_1 = api.create_provider('numa2_1', parent=cn2.uuid)
        numa2_2 = api.create_provider('numa2_2', parent=cn2.uuid)

        _setenv('AGGA_UUID', agg_a)
        _setenv('AGGB_UUID', agg_b)
        _setenv('AGGC_UUID', agg_c)
        for var, rp in (('CN1_UUID', cn1), ('CN2_UUID', cn2),
                        ('SS1_UUID', ss1), ('SS2_UUID', ss2),
                        ('NUMA1_1_UUID', numa1_1), ('NUMA1_2_UUID', numa1_2),
                        ('NUMA2_1_UUID', numa2_1), ('NUMA2_2_UUID', numa2_2)):
            _setenv(var, rp.uuid)

        for numa in (numa1_1, numa1_2, numa2_1, numa2_2):
            api.add_inventory(numa, 'VCPU', 24, allocation_ratio=16.0)
        for ss in (ss1, ss2):
            api.add_inventory(ss, 'DISK_GB', 2000, reserved=100,
                              allocation_ratio=1.0)
            api.set_traits(ss, 'MISC_SHARES_VIA_AGGREGATE')


class NUMANetworkFixture(APIFixture):
    """Two compute hosts: NUMA nodes with devices, network agents and NICs.

    cn1 has no inventory of its own (VCPU/MEMORY_MB on numa0/numa1, disk
    from sharing provider ss1) and two agents with bandwidth devices; cn2 is
    a classic compute node with three NICs of PFs offering CUSTOM_VF.
    """

    cn1 = None
    cn2 = None

    def load(self):
        self.make_entities()

    def make_entities(self):
        api = self.api
        agg_a = _new_uuid()
        _setenv('AGGA_UUID', agg_a)

        ss1 = api.create_provider('ss1', agg_a)
        api.set_traits(ss1, 'MISC_SHARES_VIA_AGGREGATE')
        api.add_inventory(ss1, 'DISK_GB', 2000)
        _setenv('SS1_UUID', ss1.uuid)

        if not self.cn1:
            self.cn1 = api.create_provider('cn1', agg_a)
        api.set_aggregates(self.cn1, [agg_a])
        api.set_traits(self.cn1, 'COMPUTE_VOLUME_MULTI_ATTACH')
        _setenv('CN1_UUID', self.cn1.uuid)

        numas = []
        for idx in (0, 1):
            numa = api.create_provider('numa%d' % idx, parent=self.cn1.uuid)
            traits = ['HW_NUMA_ROOT'] + (['CUSTOM_FOO'] if idx == 1 else [])
            api.set_traits(numa, *traits)
            api.add_inventory(numa, 'VCPU', 4)
            numas.append(numa)
            _setenv('NUMA%d_UUID' % idx, numa.uuid)
        api.add_inventory(numas[0], 'MEMORY_MB', 2048, min_unit=512,
                          step_size=256)
        api.add_inventory(numas[1], 'MEMORY_MB', 2048, min_unit=256,
                          max_unit=1024)
        user, project = 'numafx-user', 'numafx-project'
        api.set_allocation(numas[0], _new_uuid(), {'VCPU': 2},
                           project, user)

        fpga = api.create_provider('fpga0', parent=numas[0].uuid)
        api.add_inventory(fpga, 'FPGA', 1)
        _setenv('FPGA0_UUID', fpga.uuid)

        pgpu = api.create_provider('pgpu0', parent=numas[0].uuid)
        api.add_inventory(pgpu, 'VGPU', 8)
        _setenv('PGPU0_UUID', pgpu.uuid)

        for idx in (0, 1):
            fpga = api.create_provider('fpga1_%d' % idx,
                                       parent=numas[1].uuid)
            api.add_inventory(fpga, 'FPGA', 1)
            _setenv('FPGA1_%d_UUID' % idx, fpga.uuid)

        sriov = api.create_provider('sriov_agent', parent=self.cn1.uuid)
        api.set_traits(sriov, 'CUSTOM_VNIC_TYPE_DIRECT')
        _setenv('SRIOV_AGENT_UUID', sriov.uuid)
        for idx in (1, 2):
            esn = api.create_provider('esn%d' % idx, parent=sriov.uuid)
            api.set_traits(esn, 'CUSTOM_PHYSNET%d' % idx)
            api.add_inventory(esn, 'NET_BW_EGR_KILOBIT_PER_SEC', 10000 * idx)
            _setenv('ESN%d_UUID' % idx, esn.uuid)

        ovs = api.create_provider('ovs_agent', parent=self.cn1.uuid)
        api.set_traits(ovs, 'CUSTOM_VNIC_TYPE_NORMAL')
        _setenv('OVS_AGENT_UUID', ovs.uuid)
        br_int = api.create_provider('br_int', parent=ovs.uuid)
        api.set_traits(br_int, 'CUSTOM_PHYSNET0')
        api.add_inventory(br_int, 'NET_BW_EGR_KILOBIT_PER_SEC', 1000)
        _setenv('BR_INT_UUID', br_int.uuid)

        if not self.cn2:
            self.cn2 = api.create_provider('cn2')
        api.set_aggregates(self.cn2, [agg_a])
        api.add_inventory(self.cn2, 'VCPU', 8)
        api.set_allocation(self.cn2, _new_uuid(), {'VCPU': 3}, project, user)
        api.add_inventory(self.cn2, 'MEMORY_MB', 2048, min_unit=1024,
                          step_size=128)
        api.add_inventory(self.cn2, 'DISK_GB', 1000)
        api.set_traits(self.cn2, 'CUSTOM_FOO')
        _setenv('CN2_UUID', self.cn2.uuid)

        nics = []
        for idx in (1, 2, 3):
            nic = api.create_provider('nic%d' % idx, parent=self.cn2.uuid)
            api.set_traits(nic, 'CUSTOM_HW_NIC_ROOT')
            nics.append(nic)
            _setenv('NIC%d_UUID' % idx, nic.uuid)
        # (nic index, pf suffix, physnet, VF count)
        pf_layout = [
            (0, '1_1', 1, 4), (0, '1_2', 2, 4),
            (1, '2_1', 1, 2), (1, '2_2', 2, 2),
            (1, '2_3', 1, 2), (1, '2_4', 2, 2),
            (2, '3_1', 1, 8),
        ]
        for nic_idx, suffix, physnet, vfs in pf_layout:
            pf = api.create_provider('pf%s' % suffix,
                                     parent=nics[nic_idx].uuid)
            api.set_traits(pf, 'CUSTOM_PHYSNET%d' % physnet)
            api.add_inventory(pf, 'CUSTOM_VF', vfs)
            _setenv('PF%s_UUID' % suffix, pf.uuid)


class DeepNUMANetworkFixture(NUMANetworkFixture):
    """NUMANetworkFixture with cn1/cn2 under parents and a grandparent."""

    def make_entities(self):
        api = self.api
        gp1 = api.create_provider('gp1')
        p1 = api.create_provider('p1', parent=gp1.uuid)
        p2 = api.create_provider('p2', parent=gp1.uuid)
        self.cn1 = api.create_provider('cn1', parent=p1.uuid)
        self.cn2 = api.create_provider('cn2', parent=p2.uuid)
        super().make_entities()


class NonSharedStorageFixture(APIFixture):
    """Three compute nodes with local VCPU, MEMORY_MB and DISK_GB."""

    def load(self):
        api = self.api
        for name in ('AGGA_UUID', 'AGGB_UUID', 'AGGC_UUID'):
            _setenv(name, _new_uuid())
        cns = [api.create_provider('cn%d' % i) for i in (1, 2, 3)]
        for i, cn in enumerate(cns, 1):
            _setenv('CN%d_UUID' % i, cn.uuid)
        for cn in cns:
            api.add_inventory(cn, 'VCPU', 24)
            api.add_inventory(cn, 'MEMORY_MB', 128 * 1024)
            api.add_inventory(cn, 'DISK_GB', 2000)


class CORSFixture(APIFixture):
    """CORS middleware on, for one allowed origin and one allowed header."""

    server_options = {
        'enforce_new_defaults': False,
        'cors_allowed_origin': ['http://valid.example.com'],
        'cors_allow_headers': ['openstack-api-version'],
    }


class GranularFixture(APIFixture):
    """Three compute nodes and three sharing providers in aggregates A-C."""

    def load(self):
        api = self.api
        u = api.uuids
        api.create_resource_class('CUSTOM_NET_MBPS')
        _setenv('AGGA', u.aggA)
        _setenv('AGGB', u.aggB)
        _setenv('AGGC', u.aggC)

        cn_left = api.create_provider('cn_left', u.aggA)
        _setenv('CN_LEFT', cn_left.uuid)
        for rc, total in (('VCPU', 8), ('MEMORY_MB', 4096), ('DISK_GB', 500),
                          ('VGPU', 8), ('SRIOV_NET_VF', 8),
                          ('CUSTOM_NET_MBPS', 4000)):
            api.add_inventory(cn_left, rc, total)
        api.set_traits(cn_left, 'HW_CPU_X86_AVX', 'HW_CPU_X86_AVX2',
                       'HW_GPU_API_DXVA', 'HW_NIC_DCB_PFC', 'CUSTOM_FOO')

        cn_middle = api.create_provider('cn_middle', u.aggA, u.aggB)
        _setenv('CN_MIDDLE', cn_middle.uuid)
        for rc, total in (('VCPU', 8), ('MEMORY_MB', 4096),
                          ('SRIOV_NET_VF', 8), ('CUSTOM_NET_MBPS', 4000)):
            api.add_inventory(cn_middle, rc, total)
        api.set_traits(cn_middle, 'HW_CPU_X86_AVX', 'HW_CPU_X86_AVX2',
                       'HW_CPU_X86_SSE', 'HW_NIC_ACCEL_TLS')

        cn_right = api.create_provider('cn_right', u.aggB, u.aggC)
        _setenv('CN_RIGHT', cn_right.uuid)
        api.add_inventory(cn_right, 'VCPU', 8)
        api.add_inventory(cn_right, 'MEMORY_MB', 4096)
        api.add_inventory(cn_right, 'DISK_GB', 500)
        api.add_inventory(cn_right, 'VGPU', 8, max_unit=2)
        api.set_traits(cn_right, 'HW_CPU_X86_MMX', 'HW_GPU_API_DXVA',
                       'CUSTOM_DISK_SSD')

        shr_disk_1 = api.create_provider('shr_disk_1', u.aggA)
        _setenv('SHR_DISK_1', shr_disk_1.uuid)
        api.add_inventory(shr_disk_1, 'DISK_GB', 1000)
        api.set_traits(shr_disk_1, 'MISC_SHARES_VIA_AGGREGATE',
                       'CUSTOM_DISK_SSD')

        shr_disk_2 = api.create_provider('shr_disk_2', u.aggA, u.aggB)
        _setenv('SHR_DISK_2', shr_disk_2.uuid)
        api.add_inventory(shr_disk_2, 'DISK_GB', 1000)
        api.set_traits(shr_disk_2, 'MISC_SHARES_VIA_AGGREGATE')

        shr_net = api.create_provider('shr_net', u.aggC)
        _setenv('SHR_NET', shr_net.uuid)
        api.add_inventory(shr_net, 'SRIOV_NET_VF', 16)
        api.add_inventory(shr_net, 'CUSTOM_NET_MBPS', 40000)
        api.set_traits(shr_net, 'MISC_SHARES_VIA_AGGREGATE')


class OpenPolicyFixture(APIFixture):
    """Every policy rule except ``admin_api`` opened to any user."""

    server_options = {'enforce_new_defaults': False, 'open_policy': True}


class SecureRBACPolicyFixture(APIFixture):
    """The new (secure RBAC) policy defaults are enforced."""

    server_options = {'enforce_new_defaults': True}


class LegacyRBACPolicyFixture(APIFixture):
    """Explicitly the deprecated (legacy) policy defaults."""

    server_options = {'enforce_new_defaults': False}


class NeutronQoSMultiSegmentFixture(APIFixture):
    """Four compute trees as Neutron QoS (min bandwidth / packet rate) with
    multi-segment networks would report them.

    computeN (VCPU 8, MEMORY_MB 4096, DISK_GB 500)
      computeN:Open vSwitch agent (1000 kpps, VNIC_TYPE_NORMAL)
        computeN:Open vSwitch agent:br-ex[2] (egress/ingress bw, physnet)
      computeN:NIC Switch agent (direct/direct-physical/macvtap)
        computeN:NIC Switch agent:enp129s0f[01] (egress/ingress bw, physnet)
    """

    _SRIOV_TRAITS = ('CUSTOM_VNIC_TYPE_DIRECT',
                     'CUSTOM_VNIC_TYPE_DIRECT_PHYSICAL',
                     'CUSTOM_VNIC_TYPE_MACVTAP')

    # compute -> (bandwidth, [(bridge, physnet)], [(pf, physnet)])
    _LAYOUT = (
        ('compute0', 5000, 10000, [('br-ex', 'OTHER')],
         [('enp129s0f0', 'OTHER')]),
        ('compute1', 5000, 10000, [('br-ex', 'MSN_S1')],
         [('enp129s0f0', 'MSN_S1')]),
        ('compute2', 5000, 10000, [('br-ex', 'MSN_S2')],
         [('enp129s0f0', 'MSN_S2')]),
        ('compute3', 1000, 1000, [('br-ex', 'MSN_S1'), ('br-ex2', 'MSN_S2')],
         [('enp129s0f0', 'MSN_S1'), ('enp129s0f1', 'MSN_S2')]),
    )

    def _bandwidth(self, rp, kbps):
        self.api.add_inventory(rp, 'NET_BW_EGR_KILOBIT_PER_SEC', kbps)
        self.api.add_inventory(rp, 'NET_BW_IGR_KILOBIT_PER_SEC', kbps)

    def load(self):
        api = self.api
        sriov_agents = {}
        for cname, br_bw, pf_bw, bridges, pfs in self._LAYOUT:
            compute = api.create_provider(cname)
            _setenv(cname, compute.uuid)
            api.add_inventory(compute, 'VCPU', 8)
            api.add_inventory(compute, 'MEMORY_MB', 4096)
            api.add_inventory(compute, 'DISK_GB', 500)

            ovs = api.create_provider('%s:Open vSwitch agent' % cname,
                                      parent=compute.uuid)
            _setenv('%s:ovs_agent' % cname, ovs.uuid)
            api.add_inventory(ovs, 'NET_PACKET_RATE_KILOPACKET_PER_SEC',
                              1000)
            api.set_traits(ovs, 'CUSTOM_VNIC_TYPE_NORMAL')
            for bridge, physnet in bridges:
                br = api.create_provider(
                    '%s:Open vSwitch agent:%s' % (cname, bridge),
                    parent=ovs.uuid)
                _setenv('%s:%s' % (cname, bridge.replace('-', '_')), br.uuid)
                self._bandwidth(br, br_bw)
                api.set_traits(br, 'CUSTOM_VNIC_TYPE_NORMAL',
                               'CUSTOM_PHYSNET_' + physnet)

            sriov = api.create_provider('%s:NIC Switch agent' % cname,
                                        parent=compute.uuid)
            sriov_agents[cname] = sriov
            # Upstream quirk, kept on purpose: compute3's variable holds
            # compute2's SR-IOV agent.
            env_agent = sriov_agents['compute2'] if cname == 'compute3' \
                else sriov
            _setenv('%s:sriov_agent' % cname, env_agent.uuid)
            api.set_traits(sriov, *self._SRIOV_TRAITS)
            for idx, (pf_name, physnet) in enumerate(pfs):
                pf = api.create_provider(
                    '%s:NIC Switch agent:%s' % (cname, pf_name),
                    parent=sriov.uuid)
                _setenv('%s:pf%d' % (cname, idx), pf.uuid)
                self._bandwidth(pf, pf_bw)
                api.set_traits(pf, *(self._SRIOV_TRAITS +
                                     ('CUSTOM_PHYSNET_' + physnet,)))


def server_options_for(fixture_classes):
    """Merge the server options the given fixture classes need."""
    opts = {'enforce_new_defaults': False}
    for cls in fixture_classes:
        opts.update(getattr(cls, 'server_options', {}) or {})
    return opts
