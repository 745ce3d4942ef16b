# The shared interface of envs/lab and envs/homelab: the tfvars JSON that
# plugins/inventory/ derives from inventories/<env>.yml (Inventory.terraform_vars()).

variable "node" {
  description = "Default Proxmox VE node of the containers (a container may name its own)."
  type        = string
}

variable "ostemplate" {
  description = "Template volume the containers are created from (storage:vztmpl/file)."
  type        = string
}

variable "bridge" {
  description = "Linux bridge every container's eth0 is attached to."
  type        = string
}

variable "gateway" {
  description = "IPv4 default gateway of the containers."
  type        = string
}

variable "prefix_length" {
  description = "Default IPv4 prefix length of the containers' network."
  type        = number
}

variable "ssh_public_keys" {
  description = "authorized_keys content (one key per line) installed for root at creation."
  type        = string
}

variable "containers" {
  description = "Containers to manage, keyed by hostname (the runner excluded)."
  type = map(object({
    vmid          = number
    hostname      = string
    node          = optional(string)
    storage       = optional(string)
    ip            = string
    prefix_length = number
    memory        = number
    cores         = number
    tags          = list(string)
    protected     = bool
  }))
}

variable "runner" {
  description = "The CI runner container, managed apart and never destroyed; null when it is off-inventory."
  type = object({
    vmid          = number
    hostname      = string
    node          = optional(string)
    storage       = optional(string)
    ip            = string
    prefix_length = number
    memory        = number
    cores         = number
    tags          = list(string)
    protected     = bool
  })
  default = null
}
