terraform {
  required_version = ">= 1.5.0"

  required_providers {
    proxmox = {
      source  = "Telmate/proxmox"
      version = "3.0.2-rc04"
    }
  }

  # OVH Object Storage is S3-compatible, not AWS: without these flags init calls STS and
  # fails (incident #3). bucket, key, region and endpoints come from the inventory's
  # state_backend at init (-backend-config), like envs/lab.
  backend "s3" {
    use_path_style              = true
    use_lockfile                = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_region_validation      = true
    skip_metadata_api_check     = true
    skip_s3_checksum            = true
  }
}
