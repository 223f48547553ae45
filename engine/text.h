/* text.h: Keras's text preprocessing for IMDB, byte for byte: the tokenizer of
 * keras.preprocessing.text.text_to_word_sequence (after "<br />" becomes a space), a
 * vocabulary ranked by frequency as imdb_word_index.json ranks it, and the sequences of
 * keras.datasets.imdb.load_data cut and padded as pad_sequences does by default.
 *
 * Text is bytes, UTF-8 or not: only ASCII bytes are ever changed or treated specially, so
 * non-ASCII letters stay inside words and are not lower-cased. Not here: reading files
 * (imdb.c), anything Unicode-aware. */
#ifndef PSTRAIN_ENGINE_TEXT_H
#define PSTRAIN_ENGINE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Sequence indices, as keras.datasets.imdb.load_data writes them with its defaults. */
enum {
    ENG_TEXT_PAD = 0,        /* pad_sequences' value */
    ENG_TEXT_START = 1,      /* start_char: every sequence begins with it */
    ENG_TEXT_OOV = 2,        /* oov_char: known words whose index is >= num_words */
    ENG_TEXT_INDEX_FROM = 3, /* index_from: word_index values (from 1) are shifted by this */
};

/* The largest num_words whose indices fit the uint16_t sequences below. */
#define ENG_TEXT_MAX_NUM_WORDS 65536

/* Finds the next word of text[*pos, len). Words are what Keras's text_to_word_sequence
 * returns for the text with every "<br />" replaced by a space: maximal runs of bytes that
 * are none of ASCII whitespace, NUL or the filter set !"#$%&()*+,-./:;<=>?@[\]^_`{|}~ (the
 * apostrophe is not in it: "don't" is one word), and not part of a "<br />" (matched
 * exactly, before lower-casing: "<BR />" leaves the word "br"). Sets *start and *wlen to
 * the word's bytes in text, as written (eng_text_lower gives the word), and moves *pos past
 * it. Returns 1, or 0 when no word is left. */
int eng_text_next(const char *text, size_t len, size_t *pos, size_t *start, size_t *wlen);

/* dst[i] = src[i] with the bytes A-Z mapped to a-z, for i < n; dst may be src. */
void eng_text_lower(char *dst, const char *src, size_t n);

/* The distinct words of a training text, ranked; word of rank r (from 0) is Keras's
 * word_index r + 1 and sequence index r + 1 + ENG_TEXT_INDEX_FROM. Lookups hash. */
typedef struct eng_vocab eng_vocab;

/* Counts the words of texts[i] (lens[i] bytes) for i < n and ranks the distinct ones by
 * count, descending, ties in byte order (as strcmp). Returns an owned vocabulary (release
 * with eng_vocab_free); never NULL. */
eng_vocab *eng_vocab_build(const char *const *texts, const size_t *lens, size_t n);

/* Rebuilds a vocabulary from its words in rank order (eng_vocab_word's list, as a
 * checkpoint keeps it); counts are 0. Each word must be one the tokenizer can make
 * (non-empty, no A-Z, no separator byte) and appear once. Returns an owned vocabulary, or
 * NULL with a message in err naming the offending rank. */
eng_vocab *eng_vocab_from_words(const char *const *words, int n, char *err, size_t errlen);

/* An owned copy of v (counts too); never NULL. */
eng_vocab *eng_vocab_copy(const eng_vocab *v);

/* Releases *v (NULL is fine) and sets *v = NULL. */
void eng_vocab_free(eng_vocab **v);

/* The number of distinct words (88,584 for IMDB's 25,000 training reviews). */
int eng_vocab_size(const eng_vocab *v);

/* The word of rank 0 <= rank < eng_vocab_size(v), NUL-terminated, owned by v. */
const char *eng_vocab_word(const eng_vocab *v, int rank);

/* How often the word of that rank occurs in the texts it was built from (0 when rebuilt
 * from words). */
int64_t eng_vocab_count(const eng_vocab *v, int rank);

/* The rank of word[0, len) read as the tokenizer reads it (A-Z match a-z), or -1 when it is
 * not in the vocabulary. */
int eng_vocab_rank(const eng_vocab *v, const char *word, size_t len);

/* Writes text's sequence into out (maxlen): ENG_TEXT_START, then for each word in the
 * vocabulary its index, rank + 1 + ENG_TEXT_INDEX_FROM when that is below num_words, else
 * ENG_TEXT_OOV; words not in the vocabulary are left out, as load_data leaves out test
 * words never seen in training. Then, as pad_sequences(maxlen) with padding and truncating
 * 'pre', only the last maxlen entries are kept, or ENG_TEXT_PAD fills the front. Requires
 * ENG_TEXT_INDEX_FROM < num_words <= ENG_TEXT_MAX_NUM_WORDS and maxlen >= 1. Returns the
 * sequence's length before the cut or the padding (1 + the words kept). */
int64_t eng_vocab_encode(const eng_vocab *v, const char *text, size_t len, int num_words,
                         int maxlen, uint16_t *out);

#endif
