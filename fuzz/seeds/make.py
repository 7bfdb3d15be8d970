#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/seeds/<target>/: a few valid encodings of
each decoder's input (borsh, frames, JSON), so the fuzzers start past the
outer layers. Hand-written borsh; rerun after a wire format changes:
`python3 fuzz/seeds/make.py`."""
import os, struct
root = os.path.dirname(os.path.abspath(__file__))
def u8(v): return struct.pack('<B', v)
def u16(v): return struct.pack('<H', v)
def u32(v): return struct.pack('<I', v)
def u64(v): return struct.pack('<Q', v)
def vec(items): return u32(len(items)) + b''.join(items)
def bytes_(b): return u32(len(b)) + b
def string(s): return bytes_(s.encode())
def opt(x): return b'\0' if x is None else b'\1' + x
def h(n): return bytes([n]) * 32
def sig(n=7): return bytes([n]) * 64
def frame(b): return struct.pack('>I', len(b)) + b
def hlc(wall, counter=0): return u64(wall) + u32(counter)
def write(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), 'wb').write(data)

# State actions (weft_state::Action): target, op, stamp (hlc, author), signature.
# In the replica target, target [k, 0…] is the root (k = 0) or its child [k].
def action(op, target=h(0)): return target + op + hlc(1000) + h(2) + opt(None)
map_insert = action(u8(1) + bytes_(b'k') + bytes_(b'v'))
create = action(u8(0) + bytes_(b'\3') + u8(3) + u8(0))
nested_insert = action(u8(1) + bytes_(b'n') + bytes_(b'v'), bytes([3]) + bytes(31))
member_add = u8(0) + h(8) + h(9)
event_plain = string('changed') + bytes_(b'{}') + opt(string('on_changed'))
event_member = string('weft.membership') + bytes_(member_add) + opt(None)
def signed_delta(actions, events):
    return h(1) + vec([h(0)]) + h(2) + hlc(1000) + vec(actions) + vec(events) + sig()
delta_a = signed_delta([map_insert], [event_plain])
delta_b = signed_delta([create], [event_member])
content = vec([h(0)]) + hlc(1000) + vec([map_insert, create, nested_insert]) + vec([event_plain])

write('action', 'map_insert', map_insert)
write('action', 'create', create)
write('signed_delta', 'delta', delta_a)
write('signed_delta', 'membership', delta_b)
write('signed_delta', 'membership_change', member_add)
write('delta', 'causal', h(1) + vec([h(0)]) + hlc(1000) + bytes_(b'payload'))

summary = h(4) + vec([h(1)]) + vec([h(1), h(0)])
sync_request = u8(0) + u16(1) + h(3) + summary
sync_reply = u8(1) + summary + u8(1)
deltas = u8(2) + vec([bytes_(delta_a), bytes_(delta_b)]) + u8(1)
get_deltas = u8(4) + u16(1) + h(3) + vec([h(1)])
write('sync_message', 'sync_request', sync_request)
write('sync_message', 'sync_reply', sync_reply)
write('sync_message', 'deltas', deltas)
write('sync_message', 'continue', u8(3))
write('sync_message', 'get_deltas', get_deltas)
write('sync_message', 'not_found', u8(5) + vec([h(1)]))
write('sync_message', 'error', u8(7) + u8(4) + string('busy'))

write('replica', 'gossip_signed', u8(0x80) + frame(content))
write('replica', 'gossip', u8(0) + frame(delta_a) + frame(delta_b))
write('replica', 'inbound', u8(1) + frame(sync_request) + frame(deltas) + frame(u8(3)))
write('replica', 'inbound_signed', u8(0x81) + frame(sync_request) + frame(content))
write('replica', 'outbound', u8(2) + frame(sync_reply) + frame(deltas) + frame(u8(3)))
write('replica', 'restore', u8(0x83) + frame(u8(0) + content) + frame(u8(1) + content))

write('frame', 'frames', frame(b'abc') + frame(b'') + frame(b'\0' * 20))
write('frame', 'truncated', frame(b'abcdef')[:7])

addr = string('/ip4/127.0.0.1/tcp/4001')
addr_p2p = string('/ip4/10.0.0.1/udp/4001/quic-v1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA')
invitation = u8(1) + h(3) + h(2) + opt(h(5)) + u64(2**40) + bytes([6]) * 16 + h(9) + vec([addr, addr_p2p]) + sig()
proof = h(5) + sig()
write('invitation', 'invitation', invitation)
write('invitation', 'text', b'weft-invite1:' + invitation.hex().encode())
write('invitation', 'join_proof', proof)
write('invitation', 'wrapped_key', h(7) + bytes_(bytes(48)))

write('hello', 'sync', u8(0) + u8(1) + h(3) + u64(5) + h(2) + sig())
write('hello', 'join', u8(1) + u8(1) + invitation + proof)
write('hello', 'directory', u8(2) + u8(1) + h(3) + u64(5) + h(2) + sig())
write('hello', 'sync_accept', h(2) + sig())
write('hello', 'directory_granted', u8(1) + h(2) + sig() + vec([h(8) + vec([addr, addr_p2p])]))
write('hello', 'join_refused', u8(1) + string('expired'))
write('hello', 'join_accepted', u8(0) + h(2) + h(4) + bytes([6]) * 16 + bytes_(b'\0asm') + h(7) + bytes_(bytes(48)))

write('store_rows', 'context_record', h(3) + h(4) + h(2) + bytes([6]) * 16 + h(2) + h(7) + u64(1))
write('store_rows', 'app_record', string('kv-store') + bytes_(b'\0asm\1\0\0\0'))
write('store_rows', 'peer_record', vec([addr]) + vec([h(3)]) + u64(1))
job = h(1) + u32(0) + string('on_changed') + bytes_(b'{}') + opt(h(2))
write('store_rows', 'handler_job', job)
write('store_rows', 'handler_job_v1', h(1) + u32(0) + string('on_changed') + bytes_(b'{}'))
write('store_rows', 'dead_job', job + u32(5) + string('trap'))
write('store_rows', 'key_hash_u64', h(3) + u64(7)[::-1])

write('state_rows', 'damage', frame(u8(0) + u8(0) + b'') + frame(u8(1) + u8(5)) + frame(u8(0) + u8(9) + b'\1\2\3'))

def record(body): return u32(len(body)) + body
method = string('set') + u8(1) + vec([string('key') + string('String')]) + string('()')
manifest = record(u8(0) + u32(1) + string('kv') + string('0.1.0')) + record(u8(1) + vec([method])) + record(u8(2) + vec([string('Changed') + string('{}')]))
write('abi', 'manifest', manifest)
write('abi', 'state_call_root', u8(0))

ctx = '33' * 32
write('api', 'rpc_execute', ('{"jsonrpc":"2.0","id":1,"method":"execute","params":{"context":"%s","method":"set","args":{"key":"a","value":"b"}}}' % ctx).encode())
write('api', 'rpc_query', ('{"jsonrpc":"2.0","id":"q","method":"query","params":{"context":"%s","method":"get"}}' % ctx).encode())
write('api', 'rpc_status', b'{"jsonrpc":"2.0","method":"sync_status","params":{}}')
write('api', 'create_context', ('{"application":"%s","init_args":{"a":[1,2.5,null,true]}}' % ctx).encode())
write('api', 'invite', ('{"invitee":"%s","valid_for_secs":3600}' % ctx.upper()).encode())
write('api', 'join', b'{"invitation":"weft-invite1:00ff"}')
write('api', 'ws', ('{"type":"subscribe","contexts":["%s"]}\n{"type":"ping"}\n{"type":"unsubscribe"}' % ctx).encode())
write('api', 'path', ('/admin/contexts/%s/members' % ctx).encode())

# Regressions: inputs that once failed a target.
# store_rows: a peer record whose context set is out of order (borsh sorts
# it, so the row is not canonical; the target now checks only the value).
write('store_rows', 'peer_record_unsorted_contexts', bytes.fromhex(
    '0100000000000000030000000000000003000000000000000000002f000000000000000000000000000000000000000000'
    '00010000000000004400000000000000000000000000000000000000000041414141414141414141414141414141414141'
    '414141414141410000000000000000000101'))
