/* Status texts and the caller-owned error message (see vx.h). */
#include "vx.h"

#include <string.h>

const char *vx_strerror(vx_status status)
{
    /* No default: the compiler warns when a status has no text. */
    switch (status) {
    case VX_OK: return "ok";
    case VX_EINVAL: return "invalid argument";
    case VX_ENOMEM: return "out of memory";
    case VX_EIO: return "input/output error";
    case VX_ENOTFOUND: return "not found";
    case VX_ECORRUPT: return "corrupt data";
    case VX_EFORMAT: return "bad format";
    case VX_EBUSY: return "busy";
    case VX_EUNSUPPORTED: return "unsupported";
    case VX_EDB: return "catalog error";
    case VX_EINDEX: return "vector index error";
    case VX_EINTERRUPTED: return "interrupted";
    case VX_ELIMIT: return "limit exceeded";
    case VX_ESTALE: return "stale";
    case VX_STATUS_COUNT: break;
    }
    return "unknown status";
}

vx_status vx_fail(vx_err *err, vx_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
        /* Messages are one line: fold any newline a library handed us. */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return status;
}

vx_status vx_err_prefix(vx_err *err, const char *fmt, ...)
{
    if (!err) return VX_OK;
    char prefix[VX_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the message right and put the prefix in front, truncating at the end. */
    size_t plen = strlen(prefix), mlen = strlen(err->msg);
    if (plen + 2 >= VX_ERR_MSG_MAX) plen = VX_ERR_MSG_MAX - 3;
    if (plen + 2 + mlen >= VX_ERR_MSG_MAX) mlen = VX_ERR_MSG_MAX - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, mlen);
    err->msg[plen + 2 + mlen] = '\0';
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    return err->status;
}

void vx_err_clear(vx_err *err)
{
    if (!err) return;
    err->status = VX_OK;
    err->msg[0] = '\0';
}
