#!/usr/bin/env python3
"""The kernel's floor under a fan-out on this machine: the CPU one process spends writing one
small websocket frame (the bytes of `42["cases:updated"]`) to each of N loopback TCP connections,
one send() per connection, with nothing else in user space. A forked child holds the other ends
in an epoll loop and reads every frame, as a client would.

    python3 loadtest/tools/write-floor.py [N=3000] [EDITS=40] [GAP_MS=250]

It prints the writer's user and system CPU per delivery (from getrusage, µs resolution), to put
next to `loadtest/fanout-cpu.sh`'s figures: the difference is what the replica adds to the kernel's
part. On loopback, the receiver's TCP work on each segment (and waking the reader) happens in the
sender's system call, so it is in the writer's system time here just as in the replica's.
"""
import os
import resource
import select
import socket
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
edits = int(sys.argv[2]) if len(sys.argv) > 2 else 40
gap = (int(sys.argv[3]) if len(sys.argv) > 3 else 250) / 1000
payload = b'42["cases:updated"]'
frame = bytes([0x81, len(payload)]) + payload  # FIN + text, unmasked (server to client)

resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
port = listener.getsockname()[1]
ready_r, ready_w = os.pipe()
done_r, done_w = os.pipe()

child = os.fork()
if child == 0:
    # The receiving end: N connections, every frame read.
    listener.close()
    conns = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.setblocking(False)
        conns.append(c)
    ep = select.epoll()
    for c in conns:
        ep.register(c.fileno(), select.EPOLLIN)
    by_fd = {c.fileno(): c for c in conns}
    os.write(ready_w, b"r")
    want, got = n * edits * len(frame), 0
    while got < want:
        for fd, _ in ep.poll():
            try:
                got += len(by_fd[fd].recv(65536))
            except BlockingIOError:
                pass
    os.write(done_w, b"d")
    os._exit(0)

peers = []
for _ in range(n):
    s, _ = listener.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peers.append(s)
os.read(ready_r, 1)
time.sleep(2)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


u0, s0 = cpu()
for _ in range(edits):
    start = time.monotonic()
    for s in peers:
        s.send(frame)
    time.sleep(max(0.0, start + gap - time.monotonic()))
u1, s1 = cpu()
os.read(done_r, 1)
os.waitpid(child, 0)
deliveries = n * edits
print(
    f"sockets={n} edits={edits} deliveries={deliveries} "
    f"user={(u1 - u0) * 1e6 / deliveries:.2f}us system={(s1 - s0) * 1e6 / deliveries:.2f}us "
    f"total={((u1 - u0) + (s1 - s0)) * 1e6 / deliveries:.2f}us"
)
