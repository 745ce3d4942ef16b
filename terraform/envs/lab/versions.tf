terraform {
  required_version = ">= 1.5.0"

  # Partial configuration: bucket, key, region, endpoints (s3, sts, iam) and the skip
  # flags come from the inventory's state_backend at init (-backend-config), so that
  # inventories/lab.yml stays the single source of truth.
  backend "s3" {}
}
