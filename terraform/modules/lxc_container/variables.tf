variable "node" {
  description = "Proxmox VE node of the container when it names none itself."
  type        = string
}

variable "ostemplate" {
  description = "Template volume the container is created from (storage:vztmpl/file)."
  type        = string
}

variable "bridge" {
  description = "Linux bridge the container's eth0 is attached to."
  type        = string
}

variable "gateway" {
  description = "IPv4 default gateway of the container."
  type        = string
}

variable "ssh_public_keys" {
  description = "authorized_keys content (one key per line) installed for root at creation."
  type        = string
}

variable "container" {
  description = "The container: one entry of the inventory's tfvars `containers` map."
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
}

variable "rootfs_storage" {
  description = "Storage that holds the container's root filesystem when the container names none (its storage)."
  type        = string
  default     = "local-lvm"
}

variable "rootfs_size" {
  description = "Size of the container's root filesystem."
  type        = string
  default     = "8G"
}
