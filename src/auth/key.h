/* SPDX-License-Identifier: MIT */
/*
 * Forwarder: the API key record moved to the domain layer (domain/key.h), so
 * the store below auth can hold keys without including auth. Kept only so
 * code written against the old path still builds; include domain/key.h.
 * TODO(#8): remove once no file includes it.
 */
#ifndef LG_AUTH_KEY_H
#define LG_AUTH_KEY_H

#include "domain/key.h"

#endif
