//go:build !android && !ios && !windows

/* SPDX-License-Identifier: MIT
 *
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 */

package device

import "golang.zx2c4.com/wireguard/conn"

// These are vars instead of consts, as on iOS, so that an embedder can
// bound the memory the device may hold (Gate's patch; see
// third_party/README.md).
var (
	QueueStagedSize                   = conn.IdealBatchSize
	QueueOutboundSize                 = 1024
	QueueInboundSize                  = 1024
	QueueHandshakeSize                = 1024
	PreallocatedBuffersPerPool uint32 = 0 // Disable and allow for infinite memory growth
)

const MaxSegmentSize = (1 << 16) - 1 // largest possible UDP datagram
