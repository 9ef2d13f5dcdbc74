"""Chapter 8: the SMPL-layout body model (LBS) and SMPLify."""
