package domain

// Node is any object with a global id, as `node(id:)` returns it.
type Node interface {
	// NodeType is the GraphQL type name, the prefix of the global id.
	NodeType() string
	// NodeID is the object's key within its type.
	NodeID() int64
}

func (User) NodeType() string         { return TypeUser }
func (Creator) NodeType() string      { return TypeCreator }
func (Product) NodeType() string      { return TypeProduct }
func (Media) NodeType() string        { return TypeMedia }
func (Drop) NodeType() string         { return TypeDrop }
func (Order) NodeType() string        { return TypeOrder }
func (Notification) NodeType() string { return TypeNotification }

func (u User) NodeID() int64         { return u.ID }
func (c Creator) NodeID() int64      { return c.ID }
func (p Product) NodeID() int64      { return p.ID }
func (m Media) NodeID() int64        { return m.ID }
func (d Drop) NodeID() int64         { return d.ID }
func (o Order) NodeID() int64        { return o.ID }
func (n Notification) NodeID() int64 { return n.ID }
