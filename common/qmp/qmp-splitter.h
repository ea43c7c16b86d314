/* Incremental splitter for a stream of JSON texts without framing (QMP
 * input): finds where each top-level value ends by tracking nesting,
 * strings and escapes, so that json-glib only ever sees one complete text.
 * Input may arrive in any pieces: several texts in one read, one text
 * across many reads, whitespace between texts.
 *
 * Limits and recovery: a text longer than max_size bytes or nested deeper
 * than max_depth is reported once as an error and then discarded up to its
 * end (found by the same structure tracking) or up to the next newline
 * outside a string, whichever comes first; so a client that sends one
 * request per line is back in sync on the next line. A stray '}' or ']'
 * between texts is reported and dropped (once per run of strays).
 * The splitter does not validate JSON: that is the parser's job. */
#ifndef COLO_COMMON_QMP_SPLITTER_H
#define COLO_COMMON_QMP_SPLITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

typedef struct QmpSplitter QmpSplitter;

/* Called with one complete text (@text NUL-terminated, @len bytes, @error
 * NULL) or with a framing error (@text NULL, @error set, message in QEMU's
 * style). Return false to stop: the rest of the current feed is dropped. */
typedef bool (*QmpSplitterFunc)(const char *text, size_t len, const GError *error,
                                gpointer opaque);

QmpSplitter *qmp_splitter_new(size_t max_size, unsigned max_depth, QmpSplitterFunc fn,
                              gpointer opaque);

/* Feed @len bytes. Returns false if the callback asked to stop. */
bool qmp_splitter_feed(QmpSplitter *sp, const char *data, size_t len);

/* Bytes of an incomplete text held back (for diagnostics). */
size_t qmp_splitter_pending(const QmpSplitter *sp);

void qmp_splitter_set_max_size(QmpSplitter *sp, size_t max_size);

void qmp_splitter_free(QmpSplitter *sp);

/* Finds member @name of the top-level object in @text (one text that
 * json-glib parsed, with its leniencies: comments, single quotes) and
 * sets *@start and *@len to the bytes of its value as sent. False if the
 * text is not an object or has no such member. For what json-glib cannot
 * keep exactly, such as an integer beyond 64 bits. */
bool qmp_json_member_text(const char *text, size_t len, const char *name, size_t *start,
                          size_t *value_len);

/* Finds the first integer literal in @text, outside strings, comments and
 * the @skip_len bytes at @skip_start, that fits neither int64 nor uint64
 * (json-glib turns those into -1 or saturates them without a word); sets
 * *@start and *@tok_len to it. False if there is none. */
bool qmp_json_find_huge_integer(const char *text, size_t len, size_t skip_start, size_t skip_len,
                                size_t *start, size_t *tok_len);

/* True if @text (@len bytes) is a number in strict JSON syntax (RFC 8259),
 * which json-glib's lenient scanner does not check (it takes 0x10, .5). */
bool qmp_json_is_number(const char *text, size_t len);

#endif
