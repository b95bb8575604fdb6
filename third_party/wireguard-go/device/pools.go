/* SPDX-License-Identifier: MIT
 *
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 */

package device

import (
	"sync"
	"time"
)

type WaitPool struct {
	pool  sync.Pool
	cond  sync.Cond
	lock  sync.Mutex
	count uint32 // Get calls not yet Put back
	max   uint32
}

func NewWaitPool(max uint32, new func() any) *WaitPool {
	p := &WaitPool{pool: sync.Pool{New: new}, max: max}
	p.cond = sync.Cond{L: &p.lock}
	return p
}

func (p *WaitPool) Get() any {
	if p.max != 0 {
		p.lock.Lock()
		for p.count >= p.max {
			p.cond.Wait()
		}
		p.count++
		p.lock.Unlock()
	}
	return p.pool.Get()
}

func (p *WaitPool) Put(x any) {
	p.pool.Put(x)
	if p.max == 0 {
		return
	}
	p.lock.Lock()
	defer p.lock.Unlock()
	p.count--
	p.cond.Signal()
}

// available returns how many more Gets can proceed without waiting, or -1
// when the pool has no bound. (Gate's patch, see third_party/README.md.)
func (p *WaitPool) available() int {
	if p.max == 0 {
		return -1
	}
	p.lock.Lock()
	defer p.lock.Unlock()
	return int(p.max) - int(p.count)
}

// reclaimStaged makes sure that need message buffers can be had without
// waiting for a handshake. (Gate's patch, see third_party/README.md.)
// Packets staged for a peer that is still waiting for a handshake hold
// pooled buffers that only the handshake gives back, or its failure 90 s
// later; a reader that waited for them would stop all traffic until then.
// When fewer than need buffers are free, those packets are dropped, as
// they are when the handshake fails. The readers call it before they
// replace a batch, holding no locks; any other buffer in use is in flight
// and comes back without help.
//
// The peers to look at are those SendStagedPackets left waiting
// (device.stagers), not device.peers: taking the peers lock here would
// make a reader wait on a peer removal, which can wait on a sender that
// waits on a bind update, which waits on the readers. A peer is taken off
// the list before it is looked at, so one that stages again meanwhile is
// put back by SendStagedPackets, or seen with its packets here.
func (device *Device) reclaimStaged(need int) {
	if free := device.pool.messageBuffers.available(); free < 0 || free >= need {
		return
	}
	device.stagers.Range(func(k, _ any) bool {
		peer := k.(*Peer)
		device.stagers.Delete(peer)
		if len(peer.queue.staged) == 0 {
			return true
		}
		if !canSend(peer.keypairs.Current()) {
			peer.FlushStagedPackets()
		}
		return true
	})
}

// canSend reports whether packets can be sealed with keypair, or must
// wait for a handshake. (Gate's patch: SendStagedPackets had the test
// inline; reclaimStaged needs the same.)
func canSend(keypair *Keypair) bool {
	return keypair != nil && keypair.sendNonce.Load() < RejectAfterMessages && time.Since(keypair.created) < RejectAfterTime
}

// nilCount returns how many of s are nil: the buffers a reader must
// replace. (Gate's patch.)
func nilCount[T any](s []*T) int {
	n := 0
	for _, x := range s {
		if x == nil {
			n++
		}
	}
	return n
}

func (device *Device) PopulatePools() {
	device.pool.inboundElementsContainer = NewWaitPool(PreallocatedBuffersPerPool, func() any {
		s := make([]*QueueInboundElement, 0, device.BatchSize())
		return &QueueInboundElementsContainer{elems: s}
	})
	device.pool.outboundElementsContainer = NewWaitPool(PreallocatedBuffersPerPool, func() any {
		s := make([]*QueueOutboundElement, 0, device.BatchSize())
		return &QueueOutboundElementsContainer{elems: s}
	})
	device.pool.messageBuffers = NewWaitPool(PreallocatedBuffersPerPool, func() any {
		return new([MaxMessageSize]byte)
	})
	device.pool.inboundElements = NewWaitPool(PreallocatedBuffersPerPool, func() any {
		return new(QueueInboundElement)
	})
	device.pool.outboundElements = NewWaitPool(PreallocatedBuffersPerPool, func() any {
		return new(QueueOutboundElement)
	})
}

func (device *Device) GetInboundElementsContainer() *QueueInboundElementsContainer {
	c := device.pool.inboundElementsContainer.Get().(*QueueInboundElementsContainer)
	c.Mutex = sync.Mutex{}
	return c
}

func (device *Device) PutInboundElementsContainer(c *QueueInboundElementsContainer) {
	for i := range c.elems {
		c.elems[i] = nil
	}
	c.elems = c.elems[:0]
	device.pool.inboundElementsContainer.Put(c)
}

func (device *Device) GetOutboundElementsContainer() *QueueOutboundElementsContainer {
	c := device.pool.outboundElementsContainer.Get().(*QueueOutboundElementsContainer)
	c.Mutex = sync.Mutex{}
	return c
}

func (device *Device) PutOutboundElementsContainer(c *QueueOutboundElementsContainer) {
	for i := range c.elems {
		c.elems[i] = nil
	}
	c.elems = c.elems[:0]
	device.pool.outboundElementsContainer.Put(c)
}

func (device *Device) GetMessageBuffer() *[MaxMessageSize]byte {
	return device.pool.messageBuffers.Get().(*[MaxMessageSize]byte)
}

func (device *Device) PutMessageBuffer(msg *[MaxMessageSize]byte) {
	device.pool.messageBuffers.Put(msg)
}

func (device *Device) GetInboundElement() *QueueInboundElement {
	return device.pool.inboundElements.Get().(*QueueInboundElement)
}

func (device *Device) PutInboundElement(elem *QueueInboundElement) {
	elem.clearPointers()
	device.pool.inboundElements.Put(elem)
}

func (device *Device) GetOutboundElement() *QueueOutboundElement {
	return device.pool.outboundElements.Get().(*QueueOutboundElement)
}

func (device *Device) PutOutboundElement(elem *QueueOutboundElement) {
	elem.clearPointers()
	device.pool.outboundElements.Put(elem)
}
