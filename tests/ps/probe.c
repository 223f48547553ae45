/* probe.c: a stranger who speaks ZMTP 3.0 by hand at a running job's plaintext server, as an
 * attacker would: no ZeroMQ library, only TCP, a greeting, the NULL mechanism's READY, and
 * then frames whose sizes it declares itself. It measures what each attack costs the server
 * (VmRSS sampled every 5 ms, and VmHWM, from /proc/PID/status):
 *
 *   build/tests/pstrain-probe tcp://127.0.0.1:PORT PID CASE
 *
 * CASE: huge     three connections, each declaring a 1 GiB frame and sending 200 MB of it
 *       huge20g  one connection declaring a 20 GiB frame and sending 200 MB of it
 *       empties  a million empty one-frame messages, as fast as the socket takes them
 *       floods   one connection sending 900 whole messages of one 1 MB frame
 *       floods3  three connections, each sending 300 of them
 *       endless  one message of 1 MB frames that never ends (300 of them, all "more"): ZeroMQ
 *                holds a message until its last frame, whatever the high-water mark, so
 *                only --secure bounds this one
 *
 * Prints one line: the case, the bytes the server took, and growth_kb: the server's peak
 * resident memory during the attack (and until it has settled) less its resident memory
 * before. Exit status 0, or 2 when the server cannot be reached or measured. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char status_path[64];

/* kB of the field ("VmRSS:", "VmHWM:") in the server's status, or -1. */
static long status_kb(const char *field) {
    FILE *f = fopen(status_path, "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    const size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) {
            kb = strtol(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static atomic_long peak_kb;
static atomic_int sampling;

/* Samples VmRSS every 5 ms into peak_kb until sampling is cleared. */
static void *sampler(void *arg) {
    (void)arg;
    const struct timespec five = {0, 5000000};
    while (atomic_load(&sampling)) {
        const long kb = status_kb("VmRSS:");
        if (kb > atomic_load(&peak_kb))
            atomic_store(&peak_kb, kb);
        nanosleep(&five, NULL);
    }
    return NULL;
}

static struct sockaddr_in server;

/* A connection that has said its ZMTP 3.0 greeting and READY as a DEALER, or -1. */
static int zmtp_open(void) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&server, sizeof server) != 0) {
        perror("pstrain-probe: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const struct timeval five = {5, 0}; /* a server that stops reading does not hang us */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &five, sizeof five);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    uint8_t hello[64 + 30] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    /* the READY command: flags 0x04 (a short command), its size, then its body */
    static const char ready[] = "\x04\x1c\x05READY\x0bSocket-Type\x00\x00\x00\x06"
                                "DEALER";
    memcpy(hello + 64, ready, 30);
    if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t)sizeof hello) {
        perror("pstrain-probe: greeting");
        close(fd);
        return -1;
    }
    uint8_t theirs[64]; /* the server's greeting: the handshake is done once it is here */
    size_t got = 0;
    while (got < sizeof theirs) {
        const ssize_t r = recv(fd, theirs + got, sizeof theirs - got, 0);
        if (r <= 0) {
            fprintf(stderr, "pstrain-probe: no greeting from the server\n");
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    return fd;
}

/* Writes len bytes; returns the bytes the server took before it refused more. */
static size_t put(int fd, const void *buf, size_t len) {
    size_t sent = 0;
    while (sent < len) {
        const ssize_t r = send(fd, (const char *)buf + sent, len - sent, MSG_NOSIGNAL);
        if (r <= 0)
            break;
        sent += (size_t)r;
    }
    return sent;
}

/* A frame's header: flags (0x01 more, 0x02 a long size) and its declared size. */
static size_t frame_head(uint8_t *out, uint64_t size, int more) {
    out[0] = (uint8_t)(0x02 | (more ? 0x01 : 0));
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(size >> (56 - 8 * i));
    return 9;
}

/* Waits until the kernel has handed every byte sent on fd to the server (or 10 s). */
static void drained(int fd) {
    for (int i = 0; i < 1000; i++) {
        int left = 0;
        if (ioctl(fd, SIOCOUTQ, &left) != 0 || left == 0)
            return;
        usleep(10000);
    }
}

enum { MB = 1 << 20 };

/* nconn connections, each declaring a frame of declared bytes and sending body bytes of it. */
static size_t huge(int nconn, uint64_t declared, size_t body) {
    int fds[3];
    uint8_t head[9];
    char *zeros = calloc(1, MB);
    size_t took = 0, left[3];
    for (int c = 0; c < nconn; c++) {
        if ((fds[c] = zmtp_open()) < 0)
            exit(2);
        took += put(fds[c], head, frame_head(head, declared, 0));
        left[c] = body;
    }
    for (int busy = 1; busy;) { /* a megabyte to each in turn, as three attackers would */
        busy = 0;
        for (int c = 0; c < nconn; c++) {
            if (!left[c])
                continue;
            const size_t n = put(fds[c], zeros, MB);
            took += n;
            left[c] = n == MB ? left[c] - MB : 0;
            busy |= left[c] != 0;
        }
    }
    usleep(300000); /* the connections stay open while the server holds what it took */
    for (int c = 0; c < nconn; c++)
        close(fds[c]);
    free(zeros);
    return took;
}

/* n one-frame messages of size bytes each, on each of nconn connections; last_more: the
 * last frame says more is coming (a message that never ends). */
static size_t messages(int nconn, size_t n, size_t size, int last_more) {
    int fds[3];
    const size_t unit = (size < 255 ? 2 : 9) + size;
    size_t batch = size < 255 ? 65536 : 1; /* small frames go many to a write */
    if (batch > n)
        batch = n;
    uint8_t *buf = calloc(batch, unit);
    size_t took = 0;
    for (int c = 0; c < nconn; c++)
        if ((fds[c] = zmtp_open()) < 0)
            exit(2);
    for (size_t i = 0; i < batch; i++) {
        uint8_t *f = buf + i * unit;
        if (size < 255) { /* a short frame: flags, one byte of size */
            f[0] = last_more ? 0x01 : 0x00;
            f[1] = (uint8_t)size;
        } else
            frame_head(f, size, last_more);
    }
    for (size_t done = 0; done < n;) {
        const size_t k = n - done < batch ? n - done : batch;
        int all = 1;
        for (int c = 0; c < nconn; c++) {
            const size_t put_now = put(fds[c], buf, k * unit);
            took += put_now;
            all &= put_now == k * unit;
        }
        if (!all)
            break;
        done += k;
    }
    for (int c = 0; c < nconn; c++)
        drained(fds[c]);
    usleep(300000);
    for (int c = 0; c < nconn; c++)
        close(fds[c]);
    free(buf);
    return took;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr,
                "usage: %s tcp://HOST:PORT PID huge|huge20g|empties|floods|floods3|endless\n",
                argv[0]);
        return 2;
    }
    char host[64];
    int port;
    if (sscanf(argv[1], "tcp://%63[^:]:%d", host, &port) != 2 ||
        inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "pstrain-probe: %s: expected tcp://IPV4:PORT\n", argv[1]);
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    snprintf(status_path, sizeof status_path, "/proc/%s/status", argv[2]);
    signal(SIGPIPE, SIG_IGN);

    const long rss0 = status_kb("VmRSS:"), hwm0 = status_kb("VmHWM:");
    if (rss0 < 0) {
        fprintf(stderr, "pstrain-probe: %s: cannot read VmRSS\n", status_path);
        return 2;
    }
    atomic_store(&peak_kb, rss0);
    atomic_store(&sampling, 1);
    pthread_t t;
    pthread_create(&t, NULL, sampler, NULL);
    const char *what = argv[3];
    size_t took;
    if (strcmp(what, "huge") == 0)
        took = huge(3, 1ull << 30, 200u * MB);
    else if (strcmp(what, "huge20g") == 0)
        took = huge(1, 20ull << 30, 200u * MB);
    else if (strcmp(what, "empties") == 0)
        took = messages(1, 1000000, 0, 0);
    else if (strcmp(what, "floods") == 0)
        took = messages(1, 900, MB, 0);
    else if (strcmp(what, "floods3") == 0)
        took = messages(3, 300, MB, 0);
    else if (strcmp(what, "endless") == 0)
        took = messages(1, 300, MB, 1);
    else {
        fprintf(stderr, "pstrain-probe: %s: not a case\n", what);
        return 2;
    }
    usleep(500000); /* what the server does with it after we have gone */
    atomic_store(&sampling, 0);
    pthread_join(t, NULL);
    const long rss1 = status_kb("VmRSS:"), hwm1 = status_kb("VmHWM:");
    long peak = atomic_load(&peak_kb);
    if (hwm1 > hwm0 && hwm1 > peak) /* a peak between two samples */
        peak = hwm1;
    printf("%s: the server took %zu bytes; VmRSS %ld -> %ld kB (peak %ld), VmHWM %ld -> %ld kB; "
           "growth_kb %ld\n",
           what, took, rss0, rss1, peak, hwm0, hwm1, peak - rss0);
    return 0;
}
