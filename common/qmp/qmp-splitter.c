/* Incremental JSON text splitter for QMP input (see qmp-splitter.h). */
#include "config.h"

#include "common/qmp/qmp-splitter.h"
#include "common/qmp/qmp-server.h"

#include <string.h>

typedef enum {
    SPLIT_TOP,         /* between texts */
    SPLIT_VALUE,       /* inside an object, array or top-level string */
    SPLIT_SCALAR,      /* inside a top-level number or keyword */
    SPLIT_SKIP,        /* discarding the rest of a text that broke a limit */
    SPLIT_SKIP_SCALAR, /* the same, for a top-level scalar */
} SplitState;

struct QmpSplitter {
    GString *buf;
    size_t max_size;
    unsigned max_depth;
    SplitState state;
    size_t depth;
    bool in_string;
    bool escape;
    bool stray_reported;
    QmpSplitterFunc fn;
    gpointer opaque;
};

QmpSplitter *qmp_splitter_new(size_t max_size, unsigned max_depth, QmpSplitterFunc fn,
                              gpointer opaque)
{
    QmpSplitter *sp = g_new0(QmpSplitter, 1);

    sp->buf = g_string_new(NULL);
    sp->max_size = max_size;
    sp->max_depth = max_depth;
    sp->fn = fn;
    sp->opaque = opaque;
    return sp;
}

void qmp_splitter_free(QmpSplitter *sp)
{
    if (sp) {
        g_string_free(sp->buf, TRUE);
        g_free(sp);
    }
}

size_t qmp_splitter_pending(const QmpSplitter *sp)
{
    return sp->buf->len;
}

void qmp_splitter_set_max_size(QmpSplitter *sp, size_t max_size)
{
    sp->max_size = max_size;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Characters that end a top-level number or keyword. */
static bool ends_scalar(char c)
{
    return is_space(c) || strchr("{}[]\",:", c) != NULL;
}

static bool split_emit(QmpSplitter *sp)
{
    bool more = sp->fn(sp->buf->str, sp->buf->len, NULL, sp->opaque);

    g_string_truncate(sp->buf, 0);
    sp->state = SPLIT_TOP;
    sp->stray_reported = false;
    return more;
}

static bool G_GNUC_PRINTF(2, 3) split_error(QmpSplitter *sp, const char *fmt, ...)
{
    g_autoptr(GError) error = NULL;
    va_list ap;

    va_start(ap, fmt);
    error = g_error_new_valist(QMP_ERROR, QMP_ERROR_GENERIC, fmt, ap);
    va_end(ap);
    g_string_truncate(sp->buf, 0);
    return sp->fn(NULL, 0, error, sp->opaque);
}

/* Tracks strings and escapes; returns true if @c was inside a string (or
 * closed one). */
static bool track_string(QmpSplitter *sp, char c)
{
    if (!sp->in_string) {
        if (c != '"') {
            return false;
        }
        sp->in_string = true;
        return true;
    }
    if (sp->escape) {
        sp->escape = false;
    } else if (c == '\\') {
        sp->escape = true;
    } else if (c == '"') {
        sp->in_string = false;
    }
    return true;
}

static bool split_skip(QmpSplitter *sp, char c);

/* The text being collected would grow past the limit with @c: report it
 * and skip the rest, @c included. */
static bool split_over_size(QmpSplitter *sp, char c)
{
    bool scalar = sp->state == SPLIT_SCALAR;

    sp->state = scalar ? SPLIT_SKIP_SCALAR : SPLIT_SKIP;
    if (!split_error(sp, "JSON message size limit exceeded (%zu bytes)", sp->max_size)) {
        return false;
    }
    return scalar || split_skip(sp, c);
}

static bool split_top(QmpSplitter *sp, char c)
{
    if (is_space(c)) {
        return true;
    }
    sp->depth = 0;
    sp->in_string = sp->escape = false;
    if (c == '}' || c == ']') {
        if (sp->stray_reported) {
            return true;
        }
        sp->stray_reported = true;
        return split_error(sp, "JSON parse error, stray '%c'", c);
    }
    g_string_append_c(sp->buf, c);
    if (c == '{' || c == '[') {
        sp->depth = 1;
        sp->state = SPLIT_VALUE;
    } else if (c == '"') {
        sp->in_string = true;
        sp->state = SPLIT_VALUE;
    } else {
        sp->state = SPLIT_SCALAR;
    }
    return true;
}

static bool split_value(QmpSplitter *sp, char c)
{
    if (sp->buf->len >= sp->max_size) {
        return split_over_size(sp, c);
    }
    g_string_append_c(sp->buf, c);
    if (track_string(sp, c)) {
        return sp->in_string || sp->depth > 0 || split_emit(sp);
    }
    if (c == '{' || c == '[') {
        if (++sp->depth > sp->max_depth) {
            sp->state = SPLIT_SKIP;
            return split_error(sp, "JSON nesting depth limit exceeded");
        }
    } else if (c == '}' || c == ']') {
        if (--sp->depth == 0) {
            return split_emit(sp);
        }
    }
    return true;
}

static bool split_skip(QmpSplitter *sp, char c)
{
    if (track_string(sp, c)) {
        if (!sp->in_string && sp->depth == 0) {
            sp->state = SPLIT_TOP;
        }
        return true;
    }
    if (c == '\n') {
        sp->state = SPLIT_TOP;
    } else if (c == '{' || c == '[') {
        sp->depth++;
    } else if ((c == '}' || c == ']') && sp->depth > 0 && --sp->depth == 0) {
        sp->state = SPLIT_TOP;
    }
    return true;
}

/* Processes one byte; returns false if the callback asked to stop. */
static bool split_byte(QmpSplitter *sp, char c)
{
    switch (sp->state) {
    case SPLIT_TOP:
        return split_top(sp, c);
    case SPLIT_VALUE:
        return split_value(sp, c);
    case SPLIT_SCALAR:
        if (ends_scalar(c)) {
            return split_emit(sp) && split_top(sp, c);
        }
        if (sp->buf->len >= sp->max_size) {
            return split_over_size(sp, c);
        }
        g_string_append_c(sp->buf, c);
        return true;
    case SPLIT_SKIP:
        return split_skip(sp, c);
    case SPLIT_SKIP_SCALAR:
        if (ends_scalar(c)) {
            sp->state = SPLIT_TOP;
            return split_top(sp, c);
        }
        return true;
    }
    return true;
}

bool qmp_splitter_feed(QmpSplitter *sp, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!split_byte(sp, data[i])) {
            return false;
        }
    }
    return true;
}

/* --- Raw member values: a small scanner over a text json-glib accepted. */

typedef struct {
    const char *p;
    const char *end;
} JsonCursor;

/* Skips whitespace and the comments json-glib allows between tokens. */
static void cursor_skip_space(JsonCursor *c)
{
    while (c->p < c->end) {
        if (is_space(*c->p)) {
            c->p++;
        } else if (c->end - c->p >= 2 && c->p[0] == '/' && c->p[1] == '*') {
            const char *close = g_strstr_len(c->p + 2, c->end - c->p - 2, "*/");
            c->p = close ? close + 2 : c->end;
        } else if (c->end - c->p >= 2 && c->p[0] == '/' && c->p[1] == '/') {
            const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
            c->p = nl ? nl + 1 : c->end;
        } else {
            return;
        }
    }
}

/* Skips a string in double quotes (with escapes) or single quotes
 * (without, as in json-glib's scanner); false if it does not end. */
static bool cursor_skip_string(JsonCursor *c)
{
    char quote = *c->p++;

    while (c->p < c->end) {
        char ch = *c->p++;

        if (ch == '\\' && quote == '"') {
            c->p++;
        } else if (ch == quote) {
            return c->p <= c->end;
        }
    }
    return false;
}

/* Skips one value of any kind; false on input this scanner cannot follow. */
static bool cursor_skip_value(JsonCursor *c)
{
    size_t depth = 0;

    do {
        cursor_skip_space(c);
        if (c->p >= c->end) {
            return false;
        }
        char ch = *c->p;

        if (ch == '"' || ch == '\'') {
            if (!cursor_skip_string(c)) {
                return false;
            }
        } else if (ch == '{' || ch == '[') {
            depth++;
            c->p++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) {
                return false;
            }
            depth--;
            c->p++;
        } else if (ch == ',' || ch == ':') {
            if (depth == 0) {
                return false;
            }
            c->p++;
        } else {
            while (c->p < c->end && !ends_scalar(*c->p) && *c->p != '/') {
                c->p++;
            }
        }
    } while (depth > 0);
    return true;
}

/* True if the key at the cursor (a string token, skipped) names @name. */
static bool cursor_key_is(JsonCursor *c, const char *name, bool *ok)
{
    const char *key = c->p;

    *ok = cursor_skip_string(c);
    if (!*ok) {
        return false;
    }
    size_t inner = (size_t)(c->p - key) - 2;
    if (!memchr(key + 1, '\\', inner) || *key == '\'') {
        return inner == strlen(name) && !memcmp(key + 1, name, inner);
    }
    /* Escapes (such as \u0069d for "id"): let json-glib decode the key. */
    g_autofree char *quoted = g_strndup(key, inner + 2);
    g_autoptr(JsonNode) node = json_from_string(quoted, NULL);
    return node && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING &&
           !strcmp(json_node_get_string(node), name);
}

bool qmp_json_member_text(const char *text, size_t len, const char *name, size_t *start,
                          size_t *value_len)
{
    JsonCursor c = { text, text + len };
    bool ok;

    cursor_skip_space(&c);
    if (c.p >= c.end || *c.p++ != '{') {
        return false;
    }
    for (;;) {
        cursor_skip_space(&c);
        if (c.p >= c.end || (*c.p != '"' && *c.p != '\'')) {
            return false;
        }
        bool wanted = cursor_key_is(&c, name, &ok);
        cursor_skip_space(&c);
        if (!ok || c.p >= c.end || *c.p++ != ':') {
            return false;
        }
        cursor_skip_space(&c);
        const char *value = c.p;
        if (!cursor_skip_value(&c)) {
            return false;
        }
        if (wanted) {
            *start = (size_t)(value - text);
            *value_len = (size_t)(c.p - value);
            return true;
        }
        cursor_skip_space(&c);
        if (c.p >= c.end || *c.p++ != ',') {
            return false;
        }
    }
}

/* An integer literal beyond both int64 and uint64. */
static bool token_is_huge_integer(const char *tok, size_t n)
{
    g_autofree char *text = g_strndup(tok, n);
    const char *digits_start = text + (text[0] == '-');
    gint64 s;
    guint64 u;

    if (!*digits_start || strspn(digits_start, "0123456789") != strlen(digits_start)) {
        return false;
    }
    return !g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &s, NULL) &&
           !g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &u, NULL);
}

bool qmp_json_find_huge_integer(const char *text, size_t len, size_t skip_start, size_t skip_len,
                                size_t *start, size_t *tok_len)
{
    JsonCursor c = { text, text + len };

    for (;;) {
        cursor_skip_space(&c);
        if (c.p >= c.end) {
            return false;
        }
        if (*c.p == '"' || *c.p == '\'') {
            if (!cursor_skip_string(&c)) {
                return false;
            }
            continue;
        }
        const char *tok = c.p;
        while (c.p < c.end && !ends_scalar(*c.p) && *c.p != '/') {
            c.p++;
        }
        if (c.p == tok) {
            c.p++;      /* punctuation, or a '/' that starts no comment */
            continue;
        }
        size_t off = (size_t)(tok - text), n = (size_t)(c.p - tok);
        if ((off < skip_start || off >= skip_start + skip_len) && token_is_huge_integer(tok, n)) {
            *start = off;
            *tok_len = n;
            return true;
        }
    }
}

static size_t digits(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && g_ascii_isdigit(*q)) {
        q++;
    }
    return (size_t)(q - p);
}

bool qmp_json_is_number(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    size_t n;

    if (p < end && *p == '-') {
        p++;
    }
    n = digits(p, end);
    if (n == 0 || (n > 1 && *p == '0')) {
        return false;
    }
    p += n;
    if (p < end && *p == '.') {
        p++;
        if (!(n = digits(p, end))) {
            return false;
        }
        p += n;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (!(n = digits(p, end))) {
            return false;
        }
        p += n;
    }
    return p == end;
}
