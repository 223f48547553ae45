/* ckpt_example.h: small valid checkpoints for fuzz_ckpt and make_corpus: a real one written by
 * eng_ckpt_write, and a copy of it with its large datasets left unwritten (HDF5 stores no
 * chunk nobody wrote and reads it as zeros), which is kilobytes and still reads. */
#ifndef PSTRAIN_TESTS_FUZZ_CKPT_EXAMPLE_H
#define PSTRAIN_TESTS_FUZZ_CKPT_EXAMPLE_H

#include "engine/optim.h"

#include <stddef.h>

#define FZ_HOLLOW 4096 /* bytes: larger datasets are left unwritten in copies */

/* Writes a checkpoint of registry model `model` to path with eng_ckpt_write: optimizer kind
 * (kind2 for a two-part model's second part), 2 update-count runs, 2 workers, vocab (words
 * each ended by '\n') or NULL, small made-up numbers. Returns 0, or -1 with err. */
int fz_ckpt_write_example(const char *path, const char *model, eng_optim_kind kind,
                          eng_optim_kind kind2, const char *vocab, char *err, size_t errlen);

/* Copies the HDF5 file from to `to`: every group, dataset and attribute with its type, shape
 * and creation properties (chunks, Fletcher32), but the data only of datasets of at most
 * FZ_HOLLOW bytes. latest: with format bounds (1.8, latest), as pstrain writes, else HDF5's
 * earliest format (superblock 0, no metadata checksums). Returns 0, or -1 with err. */
int fz_h5_hollow_copy(const char *from, const char *to, int latest, char *err, size_t errlen);

#endif
