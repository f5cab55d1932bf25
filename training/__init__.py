"""RoomFit training: label product photos with a teacher, train the MobileNetV2 U-Net, evaluate and export it."""
