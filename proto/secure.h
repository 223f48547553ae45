/* secure.h: CURVE encryption and authentication for a job's ZeroMQ sockets (--secure), so
 * that servers serve only the job's own processes.
 *
 * Keys. pb_keys_new makes one CURVE key pair for all the job's servers, one shared by all
 * its workers, and a random 64-bit job token, fresh for each job. The rank that makes them
 * hands them to the others over MPI (pb_keys is plain bytes, no pointers: MPI_Bcast of
 * sizeof(pb_keys) MPI_BYTEs between hosts of one build); they are never written to disk or
 * put on a command line, and pb_keys_wipe clears them when done. Per-process keys are not
 * needed for what --secure promises, keeping strangers out: a connection gets in only by
 * proving it holds the job's client secret, and every process of the job gets all keys
 * through the same MPI channel anyway, so more key pairs would keep out no one more. They
 * would only matter against a process of the job itself (telling workers apart, or a
 * worker posing as a server), which is not the threat here.
 *
 * Server side. pb_secure_server makes a socket a CURVE server; pb_guard answers ZeroMQ's
 * authentication requests (ZAP, RFC 27) for its context, letting in a CURVE client only when
 * its public key is the job's client key. Without a ZAP handler ZeroMQ lets in any client
 * that knows the server's public key, so the guard must be running before the socket binds
 * and until it is closed. Handshakes that fail before ZAP is asked (a plain-text client, a
 * client with another server key) are seen through a monitor on the server socket. Every
 * refusal it sees is counted and logged.
 *
 * Client side. pb_secure_client makes a socket a CURVE client of the job's servers.
 *
 * Functions that can fail return PST_OK (0) or PST_ESOCKET (proto/wire.h) with one line in err.
 * This file knows nothing of protobuf or MPI; the job token is only carried here. */
#ifndef PSTRAIN_PROTO_SECURE_H
#define PSTRAIN_PROTO_SECURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PB_ZAP_DOMAIN "pstrain" /* the ZAP domain of our server sockets */
#define PB_GUARD_QUIET_S 10     /* repeated refusals of one address: one line per this */

/* Z85 keys, 40 characters and a NUL each. server_* and client_secret are secrets. */
typedef struct pb_keys {
    char server_public[41], server_secret[41];
    char client_public[41], client_secret[41];
    uint64_t token; /* random, never 0: the job's token, for checks without CURVE */
} pb_keys;

/* Fills k with fresh keys (zmq_curve_keypair) and a fresh token (getrandom). Fails when
 * libzmq was built without CURVE (zmq_has("curve")) or the kernel gives no randomness;
 * k is then zeroed. */
int pb_keys_new(pb_keys *k, char *err, size_t errlen);

/* Zeroes all of k (keys and token) in a way the compiler may not drop. */
void pb_keys_wipe(pb_keys *k);

/* Makes sock (not yet bound) a CURVE server with k's server secret key and the ZAP domain
 * PB_ZAP_DOMAIN. Refuses a socket that is already bound or connected: options set later do
 * not reach an existing endpoint, which would stay plain text. */
int pb_secure_server(void *sock, const pb_keys *k, char *err, size_t errlen);

/* Makes sock (not yet connected) a CURVE client of the job's servers, with k's server
 * public key and the client key pair. Refuses a socket already bound or connected. */
int pb_secure_client(void *sock, const pb_keys *k, char *err, size_t errlen);

/* A DEALER of ctx connected to a server at endpoint: linger 0 (what a lost server's queue
 * holds is dropped at close), send high-water mark sndhwm (< 0: ZeroMQ's), and with k a CURVE
 * client of the job's servers (NULL: plain). The socket, or NULL with err naming endpoint
 * (nothing left open). */
void *pb_dealer_new(void *ctx, const char *endpoint, int sndhwm, const pb_keys *k, char *err,
                    size_t errlen);

typedef struct pb_guard pb_guard;

/* Starts the ZAP handler of ctx on a thread of its own: it accepts a CURVE client whose
 * public key is k->client_public and refuses everything else (another key, another
 * mechanism). When server is non-NULL it also watches that socket (zmq_socket_monitor;
 * call from the thread that uses server, before it binds) for handshakes refused before ZAP
 * is asked. Each refusal counts, and writes one line to log when log is non-NULL:
 *
 *   <who>: refused a connection from <IP address> (<reason>)
 *
 * reason: "no CURVE keys" (a plain-text or PLAIN client), "not this job's key" (another
 * client key, or another server key), "closed during the handshake" (the peer hung up
 * first: often a plain-text client that saw the mismatch before the server did, or a port
 * scan) or "a malformed handshake". Bytes that are not ZMTP 3 at all (an HTTP request) are
 * dropped by libzmq without any event: refused, but neither counted nor logged. A peer that
 * retries (ZeroMQ reconnects every 100 ms by default; libzmq 4.3 does not retry after a
 * ZAP refusal) gets one line per PB_GUARD_QUIET_S seconds for each reason, then ending
 * ", and N more since the last line" when N were not logged; those not logged by the time
 * the guard stops get "<who>: refused N more connection(s) from <IP address> (<reason>) since
 * the last line". The address comes from ZAP, or for refusals seen by the monitor from the
 * accepted socket, best effort: "an unknown address" when it closed before the guard looked,
 * and with several ZMQ_IO_THREADS a refusal may be put on another connection's address.
 *
 * Only one ZAP handler per context: a second pb_guard_new on ctx fails. who names the
 * server in lines and errors ("server 3"; NULL: "pstrain"; copied, 63 bytes at most). The
 * guard keeps the client public key and a copy of who; log is borrowed and must stay open
 * until pb_guard_free; no secrets are kept. Returns an owned guard, or NULL with err.
 *
 * Order. pb_guard_new before the server socket binds; close the server socket before the
 * guard stops (ZeroMQ lets CURVE clients in unchecked once no handler is there). Then
 * either pb_guard_free and zmq_ctx_term, or zmq_ctx_term and pb_guard_free: the guard's
 * thread leaves when told (pb_guard_free) or when the context terminates, and pb_guard_free
 * never touches ctx. */
pb_guard *pb_guard_new(void *ctx, const pb_keys *k, void *server, FILE *log, const char *who,
                       char *err, size_t errlen);

/* Refusals so far (any thread). */
uint64_t pb_guard_refused(const pb_guard *g);

/* Where the guard passes on the watched server socket's connections opening and closing
 * (ZeroMQ allows one monitor a socket: pb_monitor_new connects here), or NULL when it
 * watches none. */
const char *pb_guard_conns(const pb_guard *g);

/* Stops the guard's thread, writes the refusals not yet logged, frees it and sets *g to
 * NULL. Accepts NULL and *g == NULL. See pb_guard_new for the order. */
void pb_guard_free(pb_guard **g);

#endif
