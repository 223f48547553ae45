/* fuzz_server.h: the servers fuzz_server runs, for make_corpus to build valid messages for
 * them (the input format is in fuzz_server.c). */
#ifndef PSTRAIN_TESTS_FUZZ_FUZZ_SERVER_H
#define PSTRAIN_TESTS_FUZZ_FUZZ_SERVER_H

#define FZ_SERVER_MODEL "mnist_cnn"
#define FZ_SERVER_WORKERS 2
#define FZ_SERVER_STALENESS 2 /* the ssp server's */
#define FZ_SERVER_CHUNK 16384 /* floats: mnist_cnn's shard is 16 messages */

/* Byte 0 of an input: frames (1..3) and server (0 sync, 1 async, 2 ssp). */
#define FZ_SERVER_SELECT(frames, server) ((unsigned char)((server)*3 + (frames)-1))

#endif
